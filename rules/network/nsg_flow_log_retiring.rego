# NSGs still covered by an NSG flow log (the NSG's read-only `flowLogs` references).
# NSG flow logs retire on 30 September 2027: traffic analytics on them stops and the flow
# log resources are deleted. Informational: a reminder to migrate to VNet flow logs. This
# deliberately does not flag NSGs *without* NSG flow logs (the old scanner flagged every
# NSG): new ones cannot be created, and VNet flow logs (AZ-NET-018) are the replacement.
package scanledger.rules.network.nsg_flow_log_retiring

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-019",
	"title": "Network security group relies on a retiring NSG flow log",
	"severity": "info",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"nist_csf": ["DE.CM-1"],
		"iso27001": ["A.8.15", "A.8.16"],
	},
	"description": "Traffic through this network security group is recorded by an NSG flow log. NSG flow logs retire on 30 September 2027 (none can be created since 30 June 2025); after that date the flow log resources are deleted and traffic analytics on them stops. Enable a virtual network flow log on its virtual network before then.",
	"remediation": {
		"portal": "Network Watcher > Flow logs > Create a Virtual network flow log for the NSG's virtual network, check it collects data, then delete the NSG flow log.",
		"cli": "az network watcher flow-log create --location <region> --resource-group <rg> --name <flow-log> --vnet <vnet-id> --storage-account <storage-id>",
	},
}

deny contains lib.finding(r, "", {"nsg_flow_logs": ids}) if {
	some r in input.resources
	logs := lib.prop(r, ["flowLogs"], [])
	nw.non_empty(logs)
	ids := [nw.ref_id(l) | some l in logs]
}
