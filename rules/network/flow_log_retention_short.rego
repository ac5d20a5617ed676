# An enabled Network Watcher flow log (NSG or virtual network flow log) whose retention
# policy deletes records after 90 days or fewer (CIS v2.1.0 6.5 / v3.0.0 7.5 "retention
# period is 'greater than 90 days'"). Reads the child resource
# Microsoft.Network/networkWatchers/flowLogs 2024-05-01 `properties.retentionPolicy`
# ({enabled, days}): with enabled false, or days 0, nothing is deleted (kept until the
# storage account's own lifecycle rules act), so only enabled with 1..90 days fires.
package scanledger.rules.network.flow_log_retention_short

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-028",
	"title": "Flow log keeps records for 90 days or fewer",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkWatchers/flowLogs"],
	"frameworks": {
		"cis_azure": ["6.5"],
		"cis_v3": ["7.5"],
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "The flow log's retention policy deletes flow records after 90 days or fewer, so traffic from before that window cannot be examined when an intrusion is found late. Reads Microsoft.Network/networkWatchers/flowLogs 2024-05-01 `properties.retentionPolicy.enabled` and `properties.retentionPolicy.days`.",
	"remediation": {
		"portal": "Network Watcher > Logs > Flow logs > the flow log > Retention days: more than 90 (or 0 to keep indefinitely) > Save.",
		"cli": "az network watcher flow-log update --location <region> --name <flow-log> --retention 91",
	},
}

deny contains lib.finding(r, "", {"retentionPolicy": lib.prop(r, ["retentionPolicy"], null)}) if {
	some r in input.resources
	lib.is_true(lib.prop(r, ["enabled"], false))
	lib.is_true(lib.prop(r, ["retentionPolicy", "enabled"], false))
	days := lib.prop(r, ["retentionPolicy", "days"], null)
	is_number(days)
	days > 0
	days <= 90
}

indeterminate contains lib.undecided(r, "the flow log document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
