# Virtual networks whose traffic is not recorded by a virtual network flow log. This is
# how the old "NSG without flow logs" check is done right today: NSG flow logs can no
# longer be created since 30 June 2025 and retire on 30 September 2027, and VNet flow logs
# (which can target the VNet, a subnet or a NIC) replace them. The VNet and its subnets
# carry read-only `flowLogs` references; the rule fires when neither the VNet nor any of
# its subnets has one. NIC-level VNet flow logs and legacy NSG flow logs on the subnets'
# NSGs (AZ-NET-019 lists those) are not visible here, so it is low.
package scanledger.rules.network.vnet_flow_log_missing

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-018",
	"title": "Virtual network has no flow log",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/virtualNetworks"],
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

subnet_logged(r) if {
	some s in lib.as_list(lib.prop(r, ["subnets"], []))
	nw.non_empty(object.get(nw.sub_props(s), "flowLogs", []))
}

deny contains lib.finding(r, "", {"vnet_flow_logs": 0, "subnets": count(lib.as_list(lib.prop(r, ["subnets"], [])))}) if {
	some r in input.resources
	not nw.non_empty(lib.prop(r, ["flowLogs"], []))
	not subnet_logged(r)
}
