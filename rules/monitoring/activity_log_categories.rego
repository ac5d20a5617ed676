# A subscription activity-log diagnostic setting
# (/subscriptions/<sub>/providers/Microsoft.Insights/diagnosticSettings/<name>) does not export
# the categories CIS asks for: Administrative, Security, Policy and Alert. A category counts
# when an enabled log entry names it or uses the `allLogs` category group, and the setting
# has a destination. Diagnostic settings of resources (ids under a resource group or a
# resource) are not this rule's business.
#
# Settings are judged per subscription over the batch: when another subscription-level
# setting of the same subscription in the same input exports the missing category, it is not
# reported (a common split: Security to a SIEM workspace, everything to an archive). A
# subscription with no activity-log setting at all cannot be detected by a per-document rule.
package scanledger.rules.monitoring.activity_log_categories

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-MON-001",
	"title": "Activity log diagnostic setting misses essential categories",
	"severity": "medium",
	"category": "monitoring",
	"resource_types": ["Microsoft.Insights/diagnosticSettings"],
	"frameworks": {
		"cis_azure": ["5.1.2"],
		"cis_v3": ["6.1.2"],
		"nist_csf": ["DE.CM-1", "PR.PT-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "The subscription's activity-log diagnostic setting does not export all of the Administrative, Security, Policy and Alert categories, so control-plane changes, Defender alerts or policy events are not kept beyond the 90-day activity log nor available to a SIEM.",
	"remediation": {
		"portal": "Monitor > Activity log > Export Activity Logs > <subscription> > Edit setting > tick Administrative, Security, Policy and Alert (or allLogs) and a destination > Save.",
		"cli": "az monitor diagnostic-settings subscription create --name <setting> --location <region> --workspace <workspace-resource-id> --logs '[{\"category\": \"Administrative\", \"enabled\": true}, {\"category\": \"Security\", \"enabled\": true}, {\"category\": \"Policy\", \"enabled\": true}, {\"category\": \"Alert\", \"enabled\": true}]'",
	},
}

essential := ["Administrative", "Security", "Policy", "Alert"]

subscription_setting(r) if platform.subscription_scoped(r, `microsoft\.insights/diagnosticsettings`)

# exports(s, category): setting s sends the category to a destination.
exports(s, category) if {
	platform.has_destination(s)
	platform.sends_category(s, category)
}

# covered(r, category): some subscription-level setting of r's subscription in this input
# exports the category.
covered(r, category) if {
	some other in input.resources
	subscription_setting(other)
	platform.subscription_of(other.id) == platform.subscription_of(r.id)
	exports(other, category)
}

# As a boolean value (a comprehension over a failing call is mis-compiled to bytecode
# by regorus 0.14: see docs/rule-authoring.md).
destination_set(s) := true if platform.has_destination(s)

destination_set(s) := false if not platform.has_destination(s)

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	subscription_setting(r)
	missing := [c | some c in essential; not covered(r, c)]
	count(missing) > 0
	details := {
		"missing_categories": missing,
		"exported_by_this_setting": [c | some c in essential; exports(r, c)],
		"has_destination": destination_set(r),
	}
}
