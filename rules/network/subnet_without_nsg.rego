# Subnets of a virtual network with no network security group. Exempt are the subnets
# Azure reserves for gateways and appliances, where an NSG is unsupported or managed by
# the service: GatewaySubnet, AzureFirewallSubnet, AzureFirewallManagementSubnet,
# RouteServerSubnet, and AzureBastionSubnet (the brief asks to exempt it; Bastion manages
# its own access). Subnet names compare case-insensitively, as ARM does.
#
# Delegated subnets are NOT exempt: most delegations (App Service, Container Instances,
# SQL Managed Instance, PostgreSQL/MySQL flexible servers, Databricks) support or require
# an NSG, and the few that historically did not (Azure NetApp Files with basic network
# features) could not be identified with certainty. The delegation is listed in details.
# A NIC-level NSG may still filter traffic of some hosts in the subnet; this rule cannot
# see it, so it is medium, not high.
package scanledger.rules.network.subnet_without_nsg

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-010",
	"title": "Virtual network subnet has no network security group",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/virtualNetworks"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "A subnet has no network security group, so traffic to and from everything in it is filtered only by NIC-level NSGs, if any. Hosts with a public IP of the Basic SKU are then open to the internet, and nothing limits lateral movement inside the network.",
	"remediation": {
		"portal": "Virtual network > Subnets > select the subnet > Network security group > choose an NSG > Save.",
		"cli": "az network vnet subnet update --resource-group <rg> --vnet-name <vnet> --name <subnet> --network-security-group <nsg>",
	},
}

exempt := {
	"gatewaysubnet",
	"azurefirewallsubnet",
	"azurefirewallmanagementsubnet",
	"azurebastionsubnet",
	"routeserversubnet",
}

deny contains lib.finding(r, s.name, details) if {
	some r in input.resources
	some s in lib.as_list(lib.prop(r, ["subnets"], []))
	is_string(s.name)
	not lower(s.name) in exempt
	props := nw.sub_props(s)
	not nw.has_ref(object.get(props, "networkSecurityGroup", null))
	details := {
		"subnet": s.name,
		"address_prefixes": array.concat(
			lib.as_list(object.get(props, "addressPrefix", [])),
			lib.as_list(object.get(props, "addressPrefixes", [])),
		),
		"delegations": [d |
			some del in lib.as_list(object.get(props, "delegations", []))
			d := object.get(nw.sub_props(del), "serviceName", "")
		],
	}
}
