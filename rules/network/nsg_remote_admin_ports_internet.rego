# Remote administration ports other than SSH and RDP (which have their own rules) open
# to the internet: Telnet (clear text), WinRM, VNC, the Docker daemon API and the
# kubelet API. Each gives shell-level control of the host when reached.
package scanledger.rules.network.nsg_remote_admin_ports_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-006",
	"title": "Network security group exposes remote administration ports to the internet",
	"severity": "high",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"nist_csf": ["PR.AC-5", "PR.MA-2"],
		"iso27001": ["A.8.20", "A.8.2"],
	},
	"description": "An inbound Allow rule lets any internet address reach a remote administration service: Telnet 23 (credentials in clear text), WinRM 5985/5986, VNC 5900, Docker API 2375/2376 or kubelet 10250. These give control of the host and are routinely brute-forced or exploited.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > delete the rule or restrict its source to a management network; administer through Azure Bastion, a VPN or just-in-time access.",
		"cli": "az network nsg rule delete --resource-group <rg> --nsg-name <nsg> --name <rule>",
	},
}

services := [
	{"port": 23, "protos": {"tcp"}, "service": "Telnet"},
	{"port": 5985, "protos": {"tcp"}, "service": "WinRM (HTTP)"},
	{"port": 5986, "protos": {"tcp"}, "service": "WinRM (HTTPS)"},
	{"port": 5900, "protos": {"tcp"}, "service": "VNC"},
	{"port": 2375, "protos": {"tcp"}, "service": "Docker API (plain)"},
	{"port": 2376, "protos": {"tcp"}, "service": "Docker API (TLS)"},
	{"port": 10250, "protos": {"tcp"}, "service": "Kubelet API"},
]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
