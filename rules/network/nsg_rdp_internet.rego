# RDP (3389) open to the internet through an NSG. RDP listens on TCP 3389 and, for its
# UDP transport, on UDP 3389, so both protocols count. Ranges, `*`, lists, protocol and
# shadowing Denies are worked out by the scanner (r.facts.nsg); one finding per NSG rule.
package scanledger.rules.network.nsg_rdp_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-002",
	"title": "Network security group allows RDP from the internet",
	"severity": "high",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		# CIS v2.1.0 6.1: "Ensure that RDP access from the Internet is evaluated and restricted".
		"cis_azure": ["6.1"],
		"cis_v3": ["7.1"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "An inbound Allow rule lets any internet address reach port 3389 (TCP or UDP), exposing Remote Desktop to password spraying, brute force and RDP exploits.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > restrict the rule's source to known addresses, or delete it and use Azure Bastion or just-in-time VM access.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --source-address-prefixes <trusted-cidr>",
	},
}

services := [{"port": 3389, "protos": {"tcp", "udp"}, "service": "RDP"}]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
