# A Recovery Services vault with no protected items (the related backupProtectedItems list,
# Microsoft.RecoveryServices vaults/backupProtectedItems 2024-04-01, is empty or 404).
# Prowler recovery_vault_has_protected_items. Either the vault is unused (clean it up) or
# the machines and databases meant to be backed up to it are not. Info. Vaults used only
# for Azure Site Recovery replication also have none.
package scanledger.rules.compute.backup_vault_empty

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-BKP-004",
	"title": "Recovery Services vault protects no items",
	"severity": "info",
	"category": "compute",
	"resource_types": ["Microsoft.RecoveryServices/vaults"],
	"frameworks": {
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13"],
	},
	"description": "The vault protects no virtual machine, database or file share, so either it is unused or the workloads it was created for are not backed up. Reads Microsoft.RecoveryServices/vaults/backupProtectedItems 2024-04-01 (the list of protected items).",
	"remediation": {
		"portal": "Recovery Services vault > Getting started > Backup > choose the workloads to protect and a policy > Enable backup (or delete the unused vault).",
		"cli": "az backup protection enable-for-vm --resource-group <rg> --vault-name <vault> --vm <vm-id> --policy-name DefaultPolicy",
	},
	"related": {"backupProtectedItems": "2024-04-01"},
}

path := "backupProtectedItems"

deny contains lib.finding(r, "", {"protectedItems": 0}) if {
	some r in input.resources
	lib.has_related(r, path)
	count(lib.arr(lib.related(r, path))) == 0
}

indeterminate contains lib.undecided(r, "the vault's protected items were not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}
