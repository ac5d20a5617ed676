# UDP services known for reflection/amplification open to the internet: an exposed DNS,
# NTP, SNMP, CLDAP, SSDP, Memcached, chargen or WS-Discovery responder is abused to flood
# third parties with spoofed-source requests (and SNMP leaks device data). UDP only: the
# TCP side of these ports is not an amplifier. Any other UDP port open to the internet is
# AZ-NET-027's (CIS 6.3).
package scanledger.rules.network.nsg_udp_amplification_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-008",
	"title": "Network security group exposes UDP amplification services to the internet",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		# Not CIS 6.3 ("UDP access from the Internet"): that asks about every UDP port, which
		# AZ-NET-027 checks; this rule is the medium-severity subset known to be abused.
		"nist_csf": ["PR.AC-5", "PR.DS-4"],
		"iso27001": ["A.8.20"],
	},
	"description": "An inbound Allow rule lets any internet address reach a UDP service that can be abused for reflection and amplification attacks: chargen 19, DNS 53, NTP 123, SNMP 161, CLDAP 389, SSDP 1900, WS-Discovery 3702 or Memcached 11211. Unless the host is deliberately a public DNS or NTP server, restrict the source.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > restrict the rule's source to known addresses or remove UDP from its protocol.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --source-address-prefixes <trusted-cidr>",
	},
}

services := [
	{"port": 19, "protos": {"udp"}, "service": "chargen"},
	{"port": 53, "protos": {"udp"}, "service": "DNS"},
	{"port": 123, "protos": {"udp"}, "service": "NTP"},
	{"port": 161, "protos": {"udp"}, "service": "SNMP"},
	{"port": 389, "protos": {"udp"}, "service": "CLDAP"},
	{"port": 1900, "protos": {"udp"}, "service": "SSDP"},
	{"port": 3702, "protos": {"udp"}, "service": "WS-Discovery"},
	{"port": 11211, "protos": {"udp"}, "service": "Memcached"},
]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
