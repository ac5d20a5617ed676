# Purge protection is off. `enablePurgeProtection` has no default (absent = not enabled)
# and, once true, cannot be turned off, so anything but true fires.
package scanledger.rules.keyvault.purge_protection

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-002",
	"title": "Key vault purge protection is not enabled",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"cis_azure": ["8.5"],
		"cis_v3": ["3.3.5"],
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13", "A.8.24"],
	},
	"description": "Without purge protection, anyone allowed to purge can permanently destroy the deleted vault or its deleted keys, secrets and certificates before the retention period ends, defeating soft delete (a common ransomware and sabotage step).",
	"remediation": {
		"portal": "Key vault > Settings > Properties > Purge protection: Enable purge protection > Save (this cannot be undone).",
		"cli": "az keyvault update --name <vault> --resource-group <rg> --enable-purge-protection true",
	},
}

deny contains lib.finding(r, "", {"enablePurgeProtection": v}) if {
	some r in input.resources
	v := lib.prop(r, ["enablePurgeProtection"], null)
	not lib.is_true(v)
}
