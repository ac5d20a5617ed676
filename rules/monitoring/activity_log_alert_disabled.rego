# An activity-log alert rule (Microsoft.Insights/activityLogAlerts) exists but is disabled,
# so the operations it was created to watch (policy, NSG, firewall, security-solution
# changes, service health) raise no notification. `enabled` defaults to true: only an
# explicit false fires. Alert rules that are missing altogether cannot be detected by a
# per-document rule.
package scanledger.rules.monitoring.activity_log_alert_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-MON-004",
	"title": "Activity log alert rule is disabled",
	"severity": "medium",
	"category": "monitoring",
	"resource_types": ["Microsoft.Insights/activityLogAlerts"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "DE.DP-4"],
		"iso27001": ["A.8.16"],
	},
	"description": "The activity log alert is disabled, so the control-plane operations it watches (for example policy assignment, NSG or SQL firewall changes) happen without anyone being notified.",
	"remediation": {
		"portal": "Monitor > Alerts > Alert rules > <rule> > Enable.",
		"cli": "az monitor activity-log alert update --name <alert> --resource-group <rg> --enabled true",
	},
}

deny contains lib.finding(r, "", {"enabled": v, "condition": lib.prop(r, ["condition"], null)}) if {
	some r in input.resources
	v := lib.prop(r, ["enabled"], true)
	platform.off(v)
}
