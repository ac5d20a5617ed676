# Public IP addresses attached to nothing. A public IP is in use when it has an
# `ipConfiguration` (NIC, load balancer frontend, gateway, firewall, Bastion, Application
# Gateway) or a `natGateway` (NAT gateway IPs have no ipConfiguration; the old scanner
# flagged them). An unused static address costs money, and one with a DNS label is a
# dangling-DNS candidate.
package scanledger.rules.network.public_ip_unassociated

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-016",
	"title": "Public IP address is not associated with any resource",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/publicIPAddresses"],
	"frameworks": {
		# CIS v2.1.0 6.7: "Ensure that Public IP addresses are Evaluated on a Periodic Basis".
		"cis_azure": ["6.7"],
		"cis_v3": ["7.7"],
		"nist_csf": ["PR.IP-1"],
		"iso27001": ["A.5.9", "A.8.9"],
	},
	"description": "The public IP address is not attached to a network interface, load balancer, gateway, firewall or NAT gateway. Unused public addresses are cost and inventory drift, and a DNS name still pointing at one can be taken over if the address is released and reused.",
	"remediation": {
		"portal": "Public IP address > Overview > if it is no longer needed, Delete (remove DNS records that point to it first).",
		"cli": "az network public-ip delete --resource-group <rg> --name <public-ip>",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not nw.has_ref(lib.prop(r, ["ipConfiguration"], null))
	not nw.has_ref(lib.prop(r, ["natGateway"], null))
	details := {
		"ipAddress": lib.prop(r, ["ipAddress"], null),
		"allocationMethod": lib.prop(r, ["publicIPAllocationMethod"], null),
		"fqdn": object.get(lib.prop(r, ["dnsSettings"], {}), "fqdn", null),
	}
}
