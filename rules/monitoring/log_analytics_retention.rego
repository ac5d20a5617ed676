# A Log Analytics workspace keeps data for fewer than 90 days (properties.retentionInDays).
# Azure's default for a new workspace is 30 days (the legacy Free tier is fixed at 7), so an
# absent value fires with the default noted. Per-table retention or long-term archive may
# extend individual tables; the workspace default is what most tables inherit.
package scanledger.rules.monitoring.log_analytics_retention

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-MON-002",
	"title": "Log Analytics workspace retains data for less than 90 days",
	"severity": "low",
	"category": "monitoring",
	"resource_types": ["Microsoft.OperationalInsights/workspaces"],
	"frameworks": {
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "The workspace's default retention is under 90 days, so logs needed to investigate an incident discovered weeks later (sign-ins, audit events, security alerts) are already gone.",
	"remediation": {
		"portal": "Log Analytics workspace > Settings > Usage and estimated costs > Data retention: 90 days or more > OK.",
		"cli": "az monitor log-analytics workspace update --resource-group <rg> --workspace-name <workspace> --retention-time 90",
	},
}

minimum := 90

# retention(r): the configured retention in days, as a number, when it is one.
retention(r) := v if {
	v := lib.prop(r, ["retentionInDays"], null)
	is_number(v)
}

retention(r) := to_number(trim_space(v)) if {
	v := lib.prop(r, ["retentionInDays"], null)
	is_string(v)
	regex.match(`^[ ]*[0-9]+[ ]*$`, v)
}

deny contains lib.finding(r, "", {"retentionInDays": days, "minimum": minimum}) if {
	some r in input.resources
	days := retention(r)
	days < minimum
}

# Absent (or null): Azure applies its 30-day default.
deny contains lib.finding(r, "", {"retentionInDays": null, "assumed_default": 30, "minimum": minimum}) if {
	some r in input.resources
	lib.prop(r, ["retentionInDays"], null) == null
}
