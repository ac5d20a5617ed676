# VPN connections negotiating with IKEv1. `connectionProtocol` is IKEv2 or IKEv1 and
# defaults to IKEv2 (the REST reference and `az network vpn-connection create
# --connection-protocol` default), so only an explicit IKEv1 fires. ExpressRoute
# connections have no IKE and never carry IKEv1.
package scanledger.rules.network.vpn_connection_ikev1

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-NET-014",
	"title": "VPN connection uses IKEv1",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/connections"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.20", "A.8.24"],
	},
	"description": "The site-to-site connection negotiates IPsec with IKEv1, a legacy protocol with known weaknesses (aggressive-mode PSK exposure, weaker negotiation, no EAP or MOBIKE). IKEv2 should be used wherever the on-premises device supports it.",
	"remediation": {
		"portal": "Connection > Configuration > IKE Protocol: IKEv2 (the connection must be recreated; IKE protocol cannot be changed in place) and configure the on-premises device to match.",
		"cli": "az network vpn-connection create --resource-group <rg> --name <connection> --vnet-gateway1 <gateway> --local-gateway2 <local-gateway> --shared-key <key> --connection-protocol IKEv2",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	p := lib.prop(r, ["connectionProtocol"], "IKEv2")
	is_string(p)
	lib.eq_ci(p, "IKEv1")
	details := {
		"connectionProtocol": p,
		"connectionType": lib.prop(r, ["connectionType"], null),
	}
}
