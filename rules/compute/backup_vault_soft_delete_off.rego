# Recovery Services vault with soft delete off: securitySettings.softDeleteSettings
# `softDeleteState` Disabled. Backup data deleted (by mistake, or by an attacker who got
# into the subscription before ransoming it) is then gone at once instead of kept 14+
# days. Enabled and AlwaysON (irreversible) pass; absent means the service default
# (Enabled) and passes.
package scanledger.rules.compute.backup_vault_soft_delete_off

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-BKP-001",
	"title": "Recovery Services vault soft delete is disabled",
	"severity": "medium",
	"category": "compute",
	"resource_types": ["Microsoft.RecoveryServices/vaults"],
	"frameworks": {
		"nist_csf": ["PR.IP-4", "PR.DS-1"],
		"iso27001": ["A.8.13"],
	},
	"description": "Soft delete is disabled on the vault, so deleted backup items are purged immediately; one compromised account can destroy the backups needed to recover from it. Reads Microsoft.RecoveryServices/vaults 2024-04-01 `properties.securitySettings.softDeleteSettings.softDeleteState`.",
	"remediation": {
		"portal": "Recovery Services vault > Settings > Properties > Security settings > Soft delete: Enable soft delete for cloud and hybrid workloads (and make it always-on) > Update.",
		"cli": "az backup vault backup-properties set --resource-group <rg> --name <vault> --soft-delete-feature-state Enable",
	},
}

deny contains lib.finding(r, "", {"softDeleteSettings": lib.prop(r, ["securitySettings", "softDeleteSettings"], null)}) if {
	some r in input.resources
	lib.eq_ci(lib.prop(r, ["securitySettings", "softDeleteSettings", "softDeleteState"], "Enabled"), "Disabled")
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
