# Key Vault AuditEvent logs are not sent anywhere (the older scanner's KV-003, without its
# mistake): a diagnostic setting counts when it has a destination and sends the AuditEvent
# category by name or through the `audit` or `allLogs` category group. ARM lists the
# settings at `providers/Microsoft.Insights/diagnosticSettings` (empty list = none).
package scanledger.rules.keyvault.audit_logging

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "providers/Microsoft.Insights/diagnosticSettings"

metadata := {
	"id": "AZ-KV-005",
	"title": "Key vault audit events are not logged",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"cis_azure": ["5.1.4"],
		"cis_v3": ["6.1.4"],
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "No diagnostic setting sends the vault's AuditEvent log (or the audit / allLogs category group) to a workspace, storage account or event hub, so reads of secrets and keys, and changes to access, leave no trail for detection or investigation.",
	"remediation": {
		"portal": "Key vault > Monitoring > Diagnostic settings > Add diagnostic setting > select the audit category group (or AuditEvent) and a destination > Save.",
		"cli": "az monitor diagnostic-settings create --name kv-audit --resource <vault-id> --workspace <workspace-id> --logs '[{\"categoryGroup\":\"audit\",\"enabled\":true}]'",
	},
	"related": {"providers/Microsoft.Insights/diagnosticSettings": "2021-05-01-preview"},
}

deny contains lib.finding(r, "", {"settings": slib.setting_names(r, path)}) if {
	some r in input.resources
	lib.has_related(r, path)
	count(slib.missing_categories(r, path, ["AuditEvent"])) > 0
}

indeterminate contains lib.undecided(r, "the vault's diagnostic settings were not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}
