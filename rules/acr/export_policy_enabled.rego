# A Premium registry allows artifact export (policies.exportPolicy.status not "disabled";
# the documented default is enabled): `az acr import` into another registry and transfer
# pipelines can copy images out. Premium only (the policy does not exist on Basic/Standard).
# Disabling exports also requires public network access to be disabled (see AZ-ACR-002).
package scanledger.rules.acr.export_policy_enabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-ACR-006",
	"title": "Premium container registry allows artifact export",
	"severity": "low",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.DS-5"],
		"iso27001": ["A.8.12"],
	},
	"description": "Exports are enabled, so anyone with import rights on another registry (in any tenant) or able to create a transfer pipeline can copy the registry's artifacts out, bypassing network restrictions on the data plane.",
	"remediation": {
		"portal": "Not available in the portal; disable public network access, remove export pipelines, then set the export policy with the CLI.",
		"cli": "az resource update --ids <registry-resource-id> --set properties.publicNetworkAccess=Disabled properties.policies.exportPolicy.status=disabled",
	},
}

deny contains lib.finding(r, "", {"exportPolicy.status": platform.acr_policy_status(r, "exportPolicy")}) if {
	some r in input.resources
	platform.acr_premium(r)
	not platform.str_eq(platform.acr_policy_status(r, "exportPolicy"), "disabled")
}
