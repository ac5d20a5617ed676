# Any UDP port open to the internet through an NSG, as CIS v2.1.0 6.3 / v3.0.0 7.3 ("UDP
# access from the Internet is evaluated and restricted") asks: an inbound Allow from an
# internet source (`*`, `Internet`, `0.0.0.0/0`, ...) whose protocol is `Udp` or `*`, on
# any destination port range that no higher-priority internet Deny for UDP covers. Low: a
# prompt to evaluate (IKE 500/4500 on a VPN appliance or SIP 5060 may be intended); the
# known reflection/amplification ports are reported at medium by AZ-NET-008 as well, and a
# wide range by AZ-NET-004. Before 2026-11 AZ-NET-008 carried the 6.3 mapping but checked
# only its eight amplification ports, so UDP 500, 4500 or 5060 from the internet passed.
package scanledger.rules.network.nsg_udp_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-027",
	"title": "Network security group allows UDP from the internet",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"cis_azure": ["6.3"],
		"cis_v3": ["7.3"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "An inbound Allow rule lets any internet address reach a UDP port (protocol Udp or Any). UDP services answer unauthenticated, spoofable packets: confirm each exposed port is a service meant to be public (a VPN endpoint, a public DNS server) and restrict the source otherwise. Reads Microsoft.Network/networkSecurityGroups 2024-05-01 `properties.securityRules[].properties` (direction, access, protocol, sourceAddressPrefix(es), destinationPortRange(s), priority).",
	"remediation": {
		"portal": "Network security group > Inbound security rules > restrict the rule's source to known addresses, or set its protocol to TCP if UDP is not needed.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --source-address-prefixes <trusted-cidr>",
	},
}

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.udp_rules(r)
}
