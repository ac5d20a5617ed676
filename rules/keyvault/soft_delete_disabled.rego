# Soft delete explicitly turned off. `enableSoftDelete` defaults to true (and since 2020
# cannot be set to false on new vaults, nor reverted once true), so only an explicit false
# fires: an absent value is the safe default, not a finding.
package scanledger.rules.keyvault.soft_delete_disabled

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-001",
	"title": "Key vault soft delete is disabled",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"cis_azure": ["8.5"],
		"cis_v3": ["3.3.5"],
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13", "A.8.24"],
	},
	"description": "The vault has soft delete explicitly disabled, so deleting the vault or any key, secret or certificate in it is immediate and permanent; losing an encryption key makes the data it protects unrecoverable.",
	"remediation": {
		"portal": "Key vault > Settings > Properties > Soft-delete: enable it, with purge protection > Save.",
		"cli": "az keyvault update --name <vault> --resource-group <rg> --enable-soft-delete true",
	},
}

deny contains lib.finding(r, "", {"enableSoftDelete": v}) if {
	some r in input.resources
	v := lib.prop(r, ["enableSoftDelete"], true)
	lib.is_false(v)
}
