# VNet peerings that share a VPN/ExpressRoute gateway: `allowGatewayTransit` (this network
# offers its gateway to the peer) or `useRemoteGateways` (this network routes through the
# peer's gateway). Normal in hub-and-spoke designs, so informational: it extends
# on-premises (or other networks') reachability across the peering, which should be a
# deliberate, reviewed choice.
package scanledger.rules.network.vnet_peering_gateway_transit

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-021",
	"title": "Virtual network peering shares a gateway (gateway transit)",
	"severity": "info",
	"category": "network",
	"resource_types": ["Microsoft.Network/virtualNetworks"],
	"frameworks": {
		"nist_csf": ["PR.AC-5", "ID.AM-3"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "A peering of this virtual network allows gateway transit or uses the remote network's gateway, so traffic from on-premises or other connected networks can reach across the peering. Confirm the hub-and-spoke design intends it and that NSGs or a firewall filter the transit traffic.",
	"remediation": {
		"portal": "Virtual network > Peerings > select the peering > clear 'Use this virtual network's gateway' / 'Use the remote virtual network's gateway' if not intended > Save.",
		"cli": "az network vnet peering update --resource-group <rg> --vnet-name <vnet> --name <peering> --set allowGatewayTransit=false useRemoteGateways=false",
	},
}

deny contains lib.finding(r, p.name, details) if {
	some r in input.resources
	some p in lib.as_list(lib.prop(r, ["virtualNetworkPeerings"], []))
	is_string(p.name)
	props := nw.sub_props(p)
	transit := object.get(props, "allowGatewayTransit", false)
	remote := object.get(props, "useRemoteGateways", false)
	flags := [f | some f, v in {"allowGatewayTransit": transit, "useRemoteGateways": remote}; lib.is_true(v)]
	count(flags) > 0
	details := {
		"peering": p.name,
		"remoteVirtualNetwork": nw.ref_id(object.get(props, "remoteVirtualNetwork", null)),
		"allowGatewayTransit": transit,
		"useRemoteGateways": remote,
	}
}
