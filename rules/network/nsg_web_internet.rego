# HTTP (80) or HTTPS (443) open to the internet through an NSG, as CIS v2.1.0 6.4 / v3.0.0
# 7.4 ("HTTP(S) access from the Internet is evaluated and restricted") asks. Severity low:
# a public web front end (Application Gateway subnet, reverse proxy, web VM) is supposed
# to accept 80 (to redirect) and 443 from anywhere, so this is a prompt to confirm the
# exposure is intended and sits behind a WAF, not a misconfiguration by itself. 80 over
# TCP; 443 over TCP (HTTP/1.1, HTTP/2) and UDP (HTTP/3, QUIC). Until 2026-11 the rule
# checked 443 only, so a rule opening just 80 passed although the mapped control covers it.
package scanledger.rules.network.nsg_web_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-003",
	"title": "Network security group allows HTTP or HTTPS from the internet",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		# CIS v2.1.0 6.4: "Ensure that HTTP(S) access from the Internet is evaluated and restricted".
		"cis_azure": ["6.4"],
		"cis_v3": ["7.4"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "An inbound Allow rule lets any internet address reach port 80 (HTTP) or 443 (HTTPS). This is expected for public web front ends; confirm the service behind it is meant to be public, is patched, and is protected by a web application firewall. Restrict the source where only known clients connect.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > if the service is not public, restrict the rule's source to known addresses or the AzureFrontDoor.Backend / GatewayManager service tags; otherwise put it behind Application Gateway WAF or Front Door.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --source-address-prefixes <trusted-cidr>",
	},
}

services := [
	{"port": 80, "protos": {"tcp"}, "service": "HTTP"},
	{"port": 443, "protos": {"tcp", "udp"}, "service": "HTTPS"},
]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
