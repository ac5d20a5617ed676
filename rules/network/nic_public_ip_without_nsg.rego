# Network interfaces with a public IP and no NSG of their own. Decision: fire, at low.
# The NIC document only references its subnet, and a rule sees one resource type at a
# time, so a subnet NSG (which does filter this NIC's traffic) cannot be seen here;
# besides, Standard SKU public IPs deny inbound traffic unless an NSG allows it. The
# dangerous combination (Basic public IP, no NSG on NIC or subnet) is covered by
# AZ-NET-017 and AZ-NET-010; this rule asks for defence in depth on directly exposed hosts
# and lists the subnet to check.
package scanledger.rules.network.nic_public_ip_without_nsg

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-020",
	"title": "Network interface with a public IP has no network security group",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkInterfaces"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "The network interface has a public IP address but no network security group of its own. Its inbound traffic is filtered only if its subnet has an NSG (check the subnet listed in details); a host reachable from the internet should have explicit rules close to it.",
	"remediation": {
		"portal": "Network interface > Network security group > Edit > choose an NSG that allows only the required ports from the required sources > Save; or remove the public IP and reach the host through a load balancer or Bastion.",
		"cli": "az network nic update --resource-group <rg> --name <nic> --network-security-group <nsg>",
	},
}

public_configs(r) := [c |
	some ipc in lib.as_list(lib.prop(r, ["ipConfigurations"], []))
	is_object(ipc)
	props := nw.sub_props(ipc)
	nw.has_ref(object.get(props, "publicIPAddress", null))
	c := {
		"ipConfiguration": object.get(ipc, "name", ""),
		"publicIPAddress": nw.ref_id(props.publicIPAddress),
		"subnet": nw.ref_id(object.get(props, "subnet", null)),
	}
]

deny contains lib.finding(r, "", {"public_ip_configurations": configs}) if {
	some r in input.resources
	not nw.has_ref(lib.prop(r, ["networkSecurityGroup"], null))
	configs := public_configs(r)
	count(configs) > 0
}
