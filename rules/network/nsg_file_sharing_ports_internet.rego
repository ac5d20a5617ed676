# File transfer, file sharing and Windows/RPC networking ports open to the internet:
# FTP (clear text), TFTP (no authentication), SMB, NetBIOS, MS-RPC, rpcbind and NFS.
# SMB and RPC exposure is how worms (WannaCry, NotPetya) spread.
package scanledger.rules.network.nsg_file_sharing_ports_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-007",
	"title": "Network security group exposes file sharing or RPC ports to the internet",
	"severity": "high",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"nist_csf": ["PR.AC-5", "PR.PT-3"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "An inbound Allow rule lets any internet address reach FTP 20/21, TFTP 69, rpcbind 111, MS-RPC 135, NetBIOS 137-139, SMB 445 or NFS 2049. These protocols carry credentials or data in clear text or have a long history of wormable vulnerabilities, and should never face the internet.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > delete the rule or restrict its source to known networks; use SFTP/FTPS, Azure Files over private endpoints, or a VPN instead.",
		"cli": "az network nsg rule delete --resource-group <rg> --nsg-name <nsg> --name <rule>",
	},
}

services := [
	{"port": 20, "protos": {"tcp"}, "service": "FTP data"},
	{"port": 21, "protos": {"tcp"}, "service": "FTP"},
	{"port": 69, "protos": {"udp"}, "service": "TFTP"},
	{"port": 111, "protos": {"tcp", "udp"}, "service": "rpcbind"},
	{"port": 135, "protos": {"tcp"}, "service": "MS-RPC"},
	{"port": 137, "protos": {"udp"}, "service": "NetBIOS name"},
	{"port": 138, "protos": {"udp"}, "service": "NetBIOS datagram"},
	{"port": 139, "protos": {"tcp"}, "service": "NetBIOS session"},
	{"port": 445, "protos": {"tcp"}, "service": "SMB"},
	{"port": 2049, "protos": {"tcp", "udp"}, "service": "NFS"},
]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
