# The subscription has no activity-log diagnostic setting: its activity log (who
# created, changed or deleted what, policy and security events) is kept by Azure for 90
# days only and reaches no SIEM. The source lists subscription-level settings through
# GET /subscriptions/<id>/providers/Microsoft.Insights/diagnosticSettings (api
# 2021-05-01-preview); settings of resources are not counted. Which categories a
# setting exports is AZ-MON-001's question. Indeterminate when the list failed.
# REST: https://learn.microsoft.com/rest/api/monitor/subscription-diagnostic-settings/list
package scanledger.rules.monitoring.subscription_diagnostic_setting_missing

import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-MON-112",
	"title": "Subscription has no activity log diagnostic setting",
	"severity": "medium",
	"category": "monitoring",
	"scope": "subscription",
	"resource_types": ["Microsoft.Insights/diagnosticSettings"],
	"reads": {"Microsoft.Insights/diagnosticSettings": []},
	"frameworks": {
		"cis_azure": ["5.1.1"],
		"cis_v3": ["6.1.1.1"],
		"nist_csf": ["DE.CM-1", "PR.PT-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "No diagnostic setting exports this subscription's activity log, so control-plane events are kept only for Azure's 90 days and are not available to a SIEM or for investigations beyond that.",
	"remediation": {
		"portal": "Monitor > Activity log > Export Activity Logs > <subscription> > Add diagnostic setting > categories Administrative, Security, Policy, Alert > a Log Analytics workspace or storage account > Save.",
		"cli": "az monitor diagnostic-settings subscription create --name <setting> --location <region> --workspace <workspace-resource-id> --logs '[{\"category\": \"Administrative\", \"enabled\": true}, {\"category\": \"Security\", \"enabled\": true}, {\"category\": \"Policy\", \"enabled\": true}, {\"category\": \"Alert\", \"enabled\": true}]'",
	},
}

prefix := lower(concat("", [inv.subscription, "/providers/microsoft.insights/diagnosticsettings/"]))

subscription_setting(s) if startswith(lower(s.id), prefix)

has_setting if {
	some s in inv.resources("Microsoft.Insights/diagnosticSettings")
	subscription_setting(s)
}

deny contains inv.finding("", {"subscription_diagnostic_settings": 0}) if {
	not has_setting
}
