# A Premium registry has the quarantine policy off (policies.quarantinePolicy.status not
# "enabled"; default disabled): newly pushed images are pullable before any scan or approval.
# Premium only; Basic/Standard are not judged. Content trust (policies.trustPolicy, Docker
# Content Trust) is deliberately not checked: Microsoft has deprecated it (removal on
# 2028-03-31) in favour of Notary Project signing, so recommending it would be bad advice.
package scanledger.rules.acr.quarantine_policy_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-ACR-005",
	"title": "Premium container registry does not quarantine new images",
	"severity": "low",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.DS-6", "DE.CM-4"],
		"iso27001": ["A.8.7"],
	},
	"description": "The quarantine policy is off, so a newly pushed image can be pulled and deployed before a vulnerability or malware scan has approved it. Relevant where images are gated by a scan-then-release workflow.",
	"remediation": {
		"portal": "Not available in the portal; enable the registry's quarantine policy through the ARM API (and set up the scanner that releases images).",
		"cli": "az resource update --ids <registry-resource-id> --set properties.policies.quarantinePolicy.status=enabled",
	},
}

deny contains lib.finding(r, "", {"quarantinePolicy.status": platform.acr_policy_status(r, "quarantinePolicy")}) if {
	some r in input.resources
	platform.acr_premium(r)
	not platform.str_eq(platform.acr_policy_status(r, "quarantinePolicy"), "enabled")
}
