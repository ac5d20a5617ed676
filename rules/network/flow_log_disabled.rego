# A Network Watcher flow log resource that exists but is switched off: `enabled` false.
# Absent means the API's default for a new flow log (enabled) and stays quiet. Someone set
# flow logging up for the target (an NSG or virtual network) and it records nothing.
package scanledger.rules.network.flow_log_disabled

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-030",
	"title": "Flow log is disabled",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkWatchers/flowLogs"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "PR.PT-1"],
		"iso27001": ["A.8.15", "A.8.16"],
	},
	"description": "The flow log for its target network security group or virtual network is disabled, so no record of the traffic is being kept. Reads Microsoft.Network/networkWatchers/flowLogs 2024-05-01 `properties.enabled` and `properties.targetResourceId`.",
	"remediation": {
		"portal": "Network Watcher > Logs > Flow logs > the flow log > Flow logs status: On > Save.",
		"cli": "az network watcher flow-log update --location <region> --name <flow-log> --enabled true",
	},
}

deny contains lib.finding(r, "", {"enabled": false, "targetResourceId": lib.prop(r, ["targetResourceId"], null)}) if {
	some r in input.resources
	lib.is_false(lib.prop(r, ["enabled"], true))
}

indeterminate contains lib.undecided(r, "the flow log document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
