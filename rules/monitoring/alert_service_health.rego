# No enabled activity log alert rule notifies on Service Health incidents for the whole
# subscription, so service issues, security advisories and planned maintenance affecting
# its resources are only seen by whoever opens the Service Health blade. An alert rule
# counts when it is enabled, scoped to the subscription, of category ServiceHealth, and
# either does not restrict properties.incidentType or admits "Incident" (a rule for
# Maintenance alone does not). Indeterminate when the alert rules could not be listed.
# CIS v2.1.0 has no such control; v3.0.0 added it (6.1.2.11).
# REST: Activity Log Alerts 2020-10-01 (https://learn.microsoft.com/rest/api/monitor/activity-log-alerts/get).
package scanledger.rules.monitoring.alert_service_health

import data.scanledger.lib
import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-MON-111",
	"title": "No activity log alert for Service Health incidents",
	"severity": "low",
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
		"cis_v3": ["6.1.2.11"],
		"nist_csf": ["DE.CM-1", "RS.CO-3"],
		"iso27001": ["A.5.24", "A.8.16"],
	},
	"description": "No enabled Service Health alert rule scoped to this subscription covers incidents, so Azure service outages and security advisories that affect its resources reach no one until they are noticed by other means.",
	"remediation": {
		"portal": "Service Health > Health alerts > Create service health alert > scope: the subscription > Event types: Service issue (and Security advisory) > Actions: an action group > Create.",
		"cli": "az monitor activity-log alert create --resource-group <rg> --name <alert> --scopes /subscriptions/<subscription-id> --condition category=ServiceHealth --action-group <action-group-id>",
	},
}

restricts_incident_type(a) if {
	some c in inv.conditions(a)
	lib.eq_ci(object.get(lib.obj(c), "field", ""), "properties.incidentType")
}

restricts_incident_type(a) if {
	some c in inv.conditions(a)
	some alt in lib.arr(object.get(lib.obj(c), "anyOf", []))
	lib.eq_ci(object.get(lib.obj(alt), "field", ""), "properties.incidentType")
}

covers_incidents(a) if not restricts_incident_type(a)

covers_incidents(a) if inv.has_condition(a, "properties.incidentType", "Incident")

watched if {
	some a in inv.alerts
	inv.alert_enabled(a)
	inv.covers_subscription(a)
	inv.has_condition(a, "category", "ServiceHealth")
	covers_incidents(a)
}

deny contains inv.finding("", {"category": "ServiceHealth", "alert_rules": count(inv.alerts)}) if {
	not watched
}
