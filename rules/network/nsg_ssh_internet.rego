# SSH (TCP 22) open to the internet through an NSG. Handles single ports, ranges, `*`,
# port lists, source lists, protocol, and higher-priority denies that shadow the allow
# (r.facts.nsg, computed by the scanner); one finding per offending NSG rule
# (lib.network.exposures).
package scanledger.rules.network.nsg_ssh_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-001",
	"title": "Network security group allows SSH from the internet",
	"severity": "high",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		# CIS v2.1.0 6.2: "Ensure that SSH access from the Internet is evaluated and restricted".
		"cis_azure": ["6.2"],
		"cis_v3": ["7.2"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "An inbound Allow rule lets any internet address reach TCP port 22, exposing SSH to brute force and exploits.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > restrict the rule's source to known addresses, or delete it and use Azure Bastion or just-in-time access.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --source-address-prefixes <trusted-cidr>",
	},
}

services := [{"port": 22, "protos": {"tcp"}, "service": "SSH"}]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
