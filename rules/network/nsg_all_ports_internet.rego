# An NSG rule that opens every port, or a very wide range, to the internet. "Wide" is at
# least 1024 ports in total over the rule's unshadowed destination ranges (e.g. `*`,
# `0-65535`, `1024-65535`, `1-1024`); a handful of service ports is left to the
# port-specific rules. ICMP/ESP/AH rules carry no ports and are ignored. A range counts as
# closed only when one higher-priority internet Deny (for every protocol the Allow opens)
# covers all of it.
package scanledger.rules.network.nsg_all_ports_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-004",
	"title": "Network security group opens all or most ports to the internet",
	"severity": "critical",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"cis_azure": ["6.1", "6.2", "6.3", "6.4"],
		"cis_v3": ["7.1", "7.2", "7.3", "7.4"],
		"nist_csf": ["PR.AC-5", "PR.PT-3"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "An inbound Allow rule lets any internet address reach every port, or a range of at least 1024 ports, of the resources behind the NSG. Every service listening on them, including management and database ports, is exposed.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > replace the rule with rules for the few ports the service needs, each restricted to the sources that need it.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --destination-port-ranges <port> --source-address-prefixes <trusted-cidr>",
	},
}

min_width := 1024

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.wide_rules(r, min_width)
}
