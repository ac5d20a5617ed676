# The subscription runs virtual machines but has no Azure Bastion host, so remote access
# to them (RDP/SSH) needs public IPs or a VPN instead of Bastion's TLS-only, Entra-signed
# access without exposing the VMs. CIS asks that a Bastion host exists; a subscription
# without VMs has nothing to reach and is not reported. One Bastion can serve peered
# VNets, so it is not required per network. Indeterminate when Bastion hosts or VMs could
# not be listed. REST: Bastion Hosts 2024-03-01 (https://learn.microsoft.com/rest/api/virtualnetwork/bastion-hosts/list).
package scanledger.rules.network.bastion_missing

import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-NET-102",
	"title": "Subscription with virtual machines has no Azure Bastion host",
	"severity": "low",
	"category": "network",
	"scope": "subscription",
	"resource_types": ["Microsoft.Network/bastionHosts", "Microsoft.Compute/virtualMachines"],
	"reads": {
		"Microsoft.Network/bastionHosts": [],
		"Microsoft.Compute/virtualMachines": [],
	},
	"frameworks": {
		"cis_azure": ["7.1"],
		"nist_csf": ["PR.AC-3", "PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "This subscription has virtual machines but no Azure Bastion host, so administrators reach them over public IPs, jump boxes or VPNs instead of Bastion's browser-based, TLS-only access that needs no public IP on the VMs.",
	"remediation": {
		"portal": "Bastions > Create > the VMs' virtual network (an AzureBastionSubnet of /26 or larger) > a public IP > Review + create.",
		"cli": "az network bastion create --name <bastion> --resource-group <rg> --vnet-name <vnet> --public-ip-address <pip> --location <region>",
	},
}

deny contains inv.finding("", {"virtual_machines": count(inv.resources("Microsoft.Compute/virtualMachines")), "bastion_hosts": 0}) if {
	count(inv.resources("Microsoft.Compute/virtualMachines")) > 0
	count(inv.resources("Microsoft.Network/bastionHosts")) == 0
}
