# Reachable from any network: public network access is not Disabled (absent = Enabled)
# and the firewall's default action is Allow (absent networkAcls = Allow, ARM's default).
# publicNetworkAccess Disabled or SecuredByPerimeter overrides the firewall: quiet.
package scanledger.rules.storage.network_default_allow

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-005",
	"title": "Storage account accepts connections from all networks",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.8"],
		"cis_v3": ["4.7"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Public network access is enabled and the storage firewall's default action is Allow, so the account's endpoints accept connections from any internet address; only authentication stands between the data and the internet.",
	"remediation": {
		"portal": "Storage account > Security + networking > Networking > Public network access: Enabled from selected virtual networks and IP addresses (or Disabled and use private endpoints) > Save.",
		"cli": "az storage account update --name <account> --resource-group <rg> --default-action Deny",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not slib.public_network_off(r)
	slib.default_action(r) == "allow"
	details := {
		"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
		"defaultAction": lib.prop(r, ["networkAcls", "defaultAction"], null),
	}
}
