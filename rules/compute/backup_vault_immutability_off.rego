# Recovery Services vault without immutability: securitySettings.immutabilitySettings
# `state` Disabled or absent. With it Unlocked or Locked, recovery points cannot be
# deleted before they expire nor retention shortened, so backups survive an attacker with
# Backup Contributor rights. Locked (irreversible) is strongest; Unlocked passes.
package scanledger.rules.compute.backup_vault_immutability_off

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-BKP-002",
	"title": "Recovery Services vault is not immutable",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.RecoveryServices/vaults"],
	"frameworks": {
		"nist_csf": ["PR.IP-4", "PR.DS-1"],
		"iso27001": ["A.8.13"],
	},
	"description": "Vault immutability is off, so someone with enough rights can delete recovery points or shorten their retention before they expire. Reads Microsoft.RecoveryServices/vaults 2024-04-01 `properties.securitySettings.immutabilitySettings.state`.",
	"remediation": {
		"portal": "Recovery Services vault > Settings > Properties > Immutable vault > Enable vault immutability (then lock it once tested) > Apply.",
		"cli": "az backup vault update --resource-group <rg> --name <vault> --immutability-state Unlocked",
	},
}

deny contains lib.finding(r, "", {"immutabilitySettings": lib.prop(r, ["securitySettings", "immutabilitySettings"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.in_ci(lib.prop(r, ["securitySettings", "immutabilitySettings", "state"], "Disabled"), {"unlocked", "locked"})
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
