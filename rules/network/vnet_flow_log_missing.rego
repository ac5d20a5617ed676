# Virtual networks whose traffic no virtual network flow log records. This is how the
# old "NSG without flow logs" check is done right today: NSG flow logs can no longer be
# created since 30 June 2025 and retire on 30 September 2027; VNet flow logs replace
# them and can target a virtual network, a subnet or a NIC.
#
# A subscription rule: it reads the subscription's flow-log resources
# (Microsoft.Network/networkWatchers/flowLogs, listed under each Network Watcher with api
# 2024-03-01) and its virtual networks, and reports each VNet that no flow log targets,
# neither the VNet itself nor one of its subnets (properties.targetResourceId, compared
# case-insensitively); a flow log with enabled = false does not count. ARM's subnet
# schema has no flowLogs property (only VirtualNetworkPropertiesFormat.flowLogs, read
# only), so the flow-log resources are what decides. NIC-targeted flow logs and legacy
# NSG flow logs (AZ-NET-019) are not mapped to VNets here, so it is low. Indeterminate
# when flow logs or virtual networks could not be listed.
# REST: Flow Logs 2024-03-01 (https://learn.microsoft.com/rest/api/network-watcher/flow-logs/list).
package scanledger.rules.network.vnet_flow_log_missing

import data.scanledger.lib
import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-NET-018",
	"title": "Virtual network has no flow log",
	"severity": "low",
	"category": "network",
	"scope": "subscription",
	"resource_types": ["Microsoft.Network/virtualNetworks", "Microsoft.Network/networkWatchers/flowLogs"],
	"reads": {
		"Microsoft.Network/virtualNetworks": ["properties.subnets[].id"],
		"Microsoft.Network/networkWatchers/flowLogs": ["properties.targetResourceId", "properties.enabled"],
	},
	"frameworks": {
		"nist_csf": ["DE.CM-1", "DE.AE-3"],
		"iso27001": ["A.8.15", "A.8.16"],
	},
	"description": "No virtual network flow log covers this virtual network or any of its subnets, so there is no record of the IP flows in it for investigation, anomaly detection or traffic analytics. If legacy NSG flow logs still cover its subnets, migrate them: NSG flow logs retire on 30 September 2027.",
	"remediation": {
		"portal": "Network Watcher > Flow logs > Create > Flow log type: Virtual network > select the virtual network > choose a storage account (and traffic analytics workspace) > Create.",
		"cli": "az network watcher flow-log create --location <region> --resource-group <rg> --name <flow-log> --vnet <vnet-id> --storage-account <storage-id>",
	},
}

# Lower-cased targets of the flow logs that are not switched off.
targets contains lower(t) if {
	some f in inv.resources("Microsoft.Network/networkWatchers/flowLogs")
	p := lib.obj(object.get(f, "properties", {}))
	not lib.is_false(object.get(p, "enabled", true))
	t := object.get(p, "targetResourceId", "")
	is_string(t)
}

covered(v) if lower(v.id) in targets

covered(v) if {
	some s in lib.arr(object.get(lib.obj(object.get(v, "properties", {})), "subnets", []))
	is_string(s.id)
	lower(s.id) in targets
}

deny contains lib.finding(v, "", {"vnet_flow_logs": 0, "subnets": count(lib.arr(object.get(lib.obj(object.get(v, "properties", {})), "subnets", [])))}) if {
	some v in inv.resources("Microsoft.Network/virtualNetworks")
	not covered(v)
}
