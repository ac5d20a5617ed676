# Container registry encrypted with service-managed keys: `encryption.status` not enabled
# (absent means disabled). Customer-managed keys need the Premium tier and are chosen at
# creation. Low: images are encrypted at rest either way.
package scanledger.rules.acr.customer_managed_key_missing

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-ACR-008",
	"title": "Container registry is not encrypted with a customer-managed key",
	"severity": "low",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The registry's content is encrypted with a service-managed key, so the organisation cannot rotate, audit or revoke the key protecting its images. Reads Microsoft.ContainerRegistry/registries 2023-07-01 `properties.encryption.status`.",
	"remediation": {
		"portal": "Customer-managed keys are chosen when a Premium registry is created: create one with Encryption > Customer-managed key, and import the images.",
		"cli": "az acr create --resource-group <rg> --name <new-registry> --sku Premium --key-encryption-key <key-uri> --identity <user-assigned-identity>",
	},
}

deny contains lib.finding(r, "", {"encryption": lib.prop(r, ["encryption"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.eq_ci(lib.prop(r, ["encryption", "status"], "disabled"), "enabled")
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
