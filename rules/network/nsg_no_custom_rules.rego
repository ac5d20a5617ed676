# An NSG with no security rules of its own runs on the default rules only: all traffic
# from the virtual network (peered networks and on-premises ranges included) and from the
# load balancer is allowed in, and everything is allowed out to the internet. That is
# not an internet exposure (DenyAllInBound still applies), so low: the NSG segments
# nothing. `defaultSecurityRules` are Azure's defaults and do not count. ARM always returns
# `securityRules` (an empty array when there are none); a missing one is read as empty.
package scanledger.rules.network.nsg_no_custom_rules

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-NET-009",
	"title": "Network security group has no custom rules",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.22"],
	},
	"description": "The network security group defines no rules of its own, so only Azure's defaults apply: every source inside the virtual network and its peerings may reach every port, and all outbound traffic to the internet is allowed. It provides no segmentation; if it is attached to nothing it is clutter.",
	"remediation": {
		"portal": "Network security group > Inbound/Outbound security rules > add rules that allow only the traffic the workload needs and deny the rest from the virtual network, or delete the NSG if it is unused.",
		"cli": "az network nsg rule create --resource-group <rg> --nsg-name <nsg> --name <rule> --priority <n> --direction Inbound --access Allow --protocol Tcp --source-address-prefixes <cidr> --destination-port-ranges <port>",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	rules := lib.prop(r, ["securityRules"], [])
	is_array(rules)
	count(rules) == 0
	details := {
		"custom_rules": 0,
		"associated_subnets": count(lib.as_list(lib.prop(r, ["subnets"], []))),
		"associated_network_interfaces": count(lib.as_list(lib.prop(r, ["networkInterfaces"], []))),
	}
}

deny contains lib.finding(r, "", {"custom_rules": 0, "securityRules": null}) if {
	some r in input.resources
	lib.prop(r, ["securityRules"], []) == null
}
