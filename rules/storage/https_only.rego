# Storage accounts must refuse plain HTTP. Azure's default since API 2019-04-01 is true,
# so only an explicit false fires.
package scanledger.rules.storage.https_only

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-STG-002",
	"title": "Storage account accepts unencrypted HTTP",
	"severity": "high",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.1"],
		"cis_v3": ["4.1"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account allows requests over HTTP, so data and shared keys can cross the network in clear text.",
	"remediation": {
		"portal": "Storage account > Settings > Configuration > Secure transfer required: Enabled > Save.",
		"cli": "az storage account update --name <account> --resource-group <rg> --https-only true",
	},
}

deny contains lib.finding(r, "", {"supportsHttpsTrafficOnly": v}) if {
	some r in input.resources
	v := lib.prop(r, ["supportsHttpsTrafficOnly"], true)
	lib.is_false(v)
}
