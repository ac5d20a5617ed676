# An enabled flow log without traffic analytics (CIS v2.1.0 5.1.5 / v3.0.0 6.1.5 "Network
# Security Group Flow logs are captured and sent to Log Analytics"): `flowAnalyticsConfiguration
# .networkWatcherFlowAnalyticsConfiguration.enabled` not true (absent: off). The records
# then sit in a storage account only, unqueried. Disabled flow logs are AZ-NET-030's.
package scanledger.rules.network.flow_log_traffic_analytics_off

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-029",
	"title": "Flow log is not sent to Log Analytics (traffic analytics off)",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkWatchers/flowLogs"],
	"frameworks": {
		"cis_azure": ["5.1.5"],
		"cis_v3": ["6.1.5"],
		"nist_csf": ["DE.CM-1", "DE.AE-3"],
		"iso27001": ["A.8.15", "A.8.16"],
	},
	"description": "Traffic analytics is off for the flow log, so its records are not processed into a Log Analytics workspace where traffic to and from the network can be searched and alerted on. Reads Microsoft.Network/networkWatchers/flowLogs 2024-05-01 `properties.flowAnalyticsConfiguration.networkWatcherFlowAnalyticsConfiguration.enabled`.",
	"remediation": {
		"portal": "Network Watcher > Logs > Flow logs > the flow log > Analytics: Enable traffic analytics, choose a Log Analytics workspace and interval > Save.",
		"cli": "az network watcher flow-log update --location <region> --name <flow-log> --traffic-analytics true --workspace <workspace-id>",
	},
}

deny contains lib.finding(r, "", {"flowAnalyticsConfiguration": lib.prop(r, ["flowAnalyticsConfiguration"], null)}) if {
	some r in input.resources
	lib.is_true(lib.prop(r, ["enabled"], false))
	not lib.is_true(lib.prop(r, ["flowAnalyticsConfiguration", "networkWatcherFlowAnalyticsConfiguration", "enabled"], false))
}

indeterminate contains lib.undecided(r, "the flow log document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
