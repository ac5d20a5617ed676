# Recovery Services vault reachable from public networks: `publicNetworkAccess` not
# Disabled (absent means Enabled). With it Disabled, backup and restore traffic goes
# through the vault's private endpoints only. Low: every call is still authenticated.
package scanledger.rules.compute.backup_vault_public_network_access

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-BKP-003",
	"title": "Recovery Services vault public network access is enabled",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.RecoveryServices/vaults"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Public network access to the vault is enabled, so backup agents and restore operations reach it over public endpoints rather than private endpoints in the virtual network. Reads Microsoft.RecoveryServices/vaults 2024-04-01 `properties.publicNetworkAccess`.",
	"remediation": {
		"portal": "Recovery Services vault > Settings > Networking > Public access: Deny (after private endpoints for Azure Backup are in place) > Apply.",
		"cli": "az backup vault update --resource-group <rg> --name <vault> --public-network-access Disable",
	},
}

deny contains lib.finding(r, "", {"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: Enabled)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.eq_ci(lib.prop(r, ["publicNetworkAccess"], "Enabled"), "Disabled")
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
