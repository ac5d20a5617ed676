# A Premium registry has no retention policy for untagged manifests
# (policies.retentionPolicy.status not "enabled"; default disabled). The policy exists only on
# Premium, so Basic and Standard registries are not judged. ACR does not allow the
# retention policy together with the soft-delete policy, so a registry with soft delete
# enabled passes.
package scanledger.rules.acr.retention_policy_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-ACR-004",
	"title": "Premium container registry has no retention policy for untagged manifests",
	"severity": "low",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.IP-6"],
		"iso27001": ["A.8.10"],
	},
	"description": "Untagged manifests (superseded image versions) are kept forever, so old, vulnerable images stay pullable by digest and keep showing up in vulnerability scans, and storage grows without bound.",
	"remediation": {
		"portal": "Container registry > Policies > Retention (Preview): Enabled, with a number of days > Save.",
		"cli": "az acr config retention update --registry <registry> --status enabled --days 30 --type UntaggedManifests",
	},
}

deny contains lib.finding(r, "", {"retentionPolicy.status": platform.acr_policy_status(r, "retentionPolicy")}) if {
	some r in input.resources
	platform.acr_premium(r)
	not platform.str_eq(platform.acr_policy_status(r, "retentionPolicy"), "enabled")
	not platform.str_eq(platform.acr_policy_status(r, "softDeletePolicy"), "enabled")
}
