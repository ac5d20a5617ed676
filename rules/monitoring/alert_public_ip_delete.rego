# No enabled activity log alert rule watches "Delete Public IP Address" (Microsoft.Network/publicIPAddresses/delete) for the whole
# subscription, so public IP addresses are deleted without anyone being notified. A subscription rule: it reads
# every activity log alert rule of the subscription (input.inventory) and fires once for
# the subscription when none is enabled, scoped to the subscription, and conditioned on
# category Administrative and this operation (narrowing leaves such as level or status
# are accepted). If the alert rules could not be listed, it is indeterminate.
# REST: Activity Log Alerts 2020-10-01, properties.scopes / enabled / condition.allOf
# (https://learn.microsoft.com/rest/api/monitor/activity-log-alerts/get).
package scanledger.rules.monitoring.alert_public_ip_delete

import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-MON-110",
	"title": "No activity log alert for Delete Public IP Address",
	"severity": "medium",
	"category": "monitoring",
	"scope": "subscription",
	"resource_types": ["Microsoft.Insights/activityLogAlerts"],
	"reads": {
		"Microsoft.Insights/activityLogAlerts": [
			"properties.enabled",
			"properties.scopes",
			"properties.condition.allOf[].field",
			"properties.condition.allOf[].equals",
			"properties.condition.allOf[].anyOf[].field",
			"properties.condition.allOf[].anyOf[].equals",
		],
	},
	"frameworks": {
		"cis_azure": ["5.2.10"],
		"cis_v3": ["6.1.2.10"],
		"nist_csf": ["DE.CM-1", "DE.AE-3"],
		"iso27001": ["A.8.16"],
	},
	"description": "No enabled activity log alert rule scoped to this subscription fires on Microsoft.Network/publicIPAddresses/delete, so public IP addresses are deleted silently: an address being released would go unnoticed until someone reads the activity log.",
	"remediation": {
		"portal": "Monitor > Alerts > Create > Alert rule > scope: the subscription > Condition: See all signals > Delete Public IP Address > Actions: an action group that reaches the security team > Create.",
		"cli": "az monitor activity-log alert create --resource-group <rg> --name <alert> --scopes /subscriptions/<subscription-id> --condition category=Administrative and operationName=Microsoft.Network/publicIPAddresses/delete --action-group <action-group-id>",
	},
}

operation := "Microsoft.Network/publicIPAddresses/delete"

deny contains inv.finding("", {"operation": operation, "alert_rules": count(inv.alerts)}) if {
	not inv.operation_watched(operation)
}
