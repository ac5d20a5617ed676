# No enabled activity log alert rule watches "Create or Update SQL Server Firewall Rule" (Microsoft.Sql/servers/firewallRules/write) for the whole
# subscription, so SQL server firewall rules are created or changed without anyone being notified. A subscription rule: it reads
# every activity log alert rule of the subscription (input.inventory) and fires once for
# the subscription when none is enabled, scoped to the subscription, and conditioned on
# category Administrative and this operation (narrowing leaves such as level or status
# are accepted). If the alert rules could not be listed, it is indeterminate.
# REST: Activity Log Alerts 2020-10-01, properties.scopes / enabled / condition.allOf
# (https://learn.microsoft.com/rest/api/monitor/activity-log-alerts/get).
package scanledger.rules.monitoring.alert_sql_firewall_rule_create_update

import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-MON-107",
	"title": "No activity log alert for Create or Update SQL Server Firewall Rule",
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
		"cis_azure": ["5.2.7"],
		"cis_v3": ["6.1.2.7"],
		"nist_csf": ["DE.CM-1", "DE.AE-3"],
		"iso27001": ["A.8.16"],
	},
	"description": "No enabled activity log alert rule scoped to this subscription fires on Microsoft.Sql/servers/firewallRules/write, so SQL server firewall rules are created or changed silently: a firewall rule opening a database to the internet would go unnoticed until someone reads the activity log.",
	"remediation": {
		"portal": "Monitor > Alerts > Create > Alert rule > scope: the subscription > Condition: See all signals > Create or Update SQL Server Firewall Rule > Actions: an action group that reaches the security team > Create.",
		"cli": "az monitor activity-log alert create --resource-group <rg> --name <alert> --scopes /subscriptions/<subscription-id> --condition category=Administrative and operationName=Microsoft.Sql/servers/firewallRules/write --action-group <action-group-id>",
	},
}

operation := "Microsoft.Sql/servers/firewallRules/write"

deny contains inv.finding("", {"operation": operation, "alert_rules": count(inv.alerts)}) if {
	not inv.operation_watched(operation)
}
