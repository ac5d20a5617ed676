# Storage account whose public endpoint is on: `publicNetworkAccess` not Disabled or
# SecuredByPerimeter (absent or null means the firewall decides, i.e. enabled). CIS
# v2.1.0 3.7 / v3.0.0 4.6. Low: the firewall (AZ-STG-005, AZ-STG-016) may restrict the
# endpoint well; the control asks for private access only.
package scanledger.rules.storage.public_network_access_enabled

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-023",
	"title": "Storage account public network access is not disabled",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.7"],
		"cis_v3": ["4.6"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Public network access is not Disabled, so the account keeps a public endpoint (restricted or not by its firewall) instead of being reachable only through private endpoints. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.publicNetworkAccess`.",
	"remediation": {
		"portal": "Storage account > Security + networking > Networking > Public network access: Disabled (after private endpoints are in place) > Save.",
		"cli": "az storage account update --resource-group <rg> --name <account> --public-network-access Disabled",
	},
}

deny contains lib.finding(r, "", {"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: Enabled)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	not slib.public_network_off(r)
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
