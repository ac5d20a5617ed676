# Databricks workspace whose cluster managed disks use platform keys: no
# `encryption.entities.managedDisk` with keySource Microsoft.Keyvault. Needs the Premium
# tier. Prowler databricks_workspace_cmk_encryption_enabled. Low: disks are encrypted
# either way.
package scanledger.rules.compute.databricks_disks_no_cmk

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-DBW-004",
	"title": "Databricks workspace managed disks are not encrypted with a customer-managed key",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Databricks/workspaces"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The workspace's managed disks (cluster nodes' data) are encrypted with platform-managed keys, so the organisation cannot rotate, audit or revoke the key. Reads Microsoft.Databricks/workspaces 2024-05-01 `properties.encryption.entities.managedDisk.keySource` and `keyVaultProperties`.",
	"remediation": {
		"portal": "Azure Databricks workspace > Settings > Encryption > Managed disks: enable customer-managed key, choose the Key Vault key > Save (Premium tier).",
		"cli": "az databricks workspace update --resource-group <rg> --name <workspace> --disk-key-source Microsoft.Keyvault --disk-key-vault <vault-uri> --disk-key-name <key> --disk-key-version <version>",
	},
}

deny contains lib.finding(r, "", {"managedDisk": lib.prop(r, ["encryption", "entities", "managedDisk"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.eq_ci(lib.prop(r, ["encryption", "entities", "managedDisk", "keySource"], ""), "Microsoft.Keyvault")
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
