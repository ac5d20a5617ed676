# Recovery Services vault without multi-user authorization (a Resource Guard):
# securitySettings `multiUserAuthorization` not Enabled (absent or Disabled). With it,
# critical operations (disabling soft delete, reducing retention, stopping protection)
# also need approval on a Resource Guard another team controls.
package scanledger.rules.compute.backup_vault_mua_off

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-BKP-005",
	"title": "Recovery Services vault has no multi-user authorization",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.RecoveryServices/vaults"],
	"frameworks": {
		"nist_csf": ["PR.AC-4", "PR.IP-4"],
		"iso27001": ["A.8.2", "A.8.13"],
	},
	"description": "Multi-user authorization is off, so a single administrator (or a compromised account) can disable the vault's protections and delete backups without anyone else approving. Reads Microsoft.RecoveryServices/vaults 2024-04-01 `properties.securitySettings.multiUserAuthorization`.",
	"remediation": {
		"portal": "Recovery Services vault > Settings > Properties > Multi-User Authorization > Update > select a Resource Guard (in another subscription or tenant) > Save.",
		"cli": "az backup vault resource-guard-mapping update --resource-group <rg> --vault-name <vault> --resource-guard-id <resource-guard-id>",
	},
}

deny contains lib.finding(r, "", {"multiUserAuthorization": lib.prop(r, ["securitySettings", "multiUserAuthorization"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.eq_ci(lib.prop(r, ["securitySettings", "multiUserAuthorization"], "Disabled"), "Enabled")
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
