# Internet-facing Application Gateways without an active web application firewall.
# WAF is active when the SKU tier is WAF or WAF_v2 and either a WAF policy is associated
# (`properties.firewallPolicy`, the current model; the old scanner missed it), every
# listener has its own policy, or the legacy `webApplicationFirewallConfiguration.enabled`
# is true. Standard/Standard_v2/Basic tiers cannot run WAF. Only gateways with a public
# frontend IP are flagged: a private-only gateway is not reachable from the internet.
# Whether an associated policy is in Detection mode or disabled is AZ-NET-013.
package scanledger.rules.network.appgw_waf_missing

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-012",
	"title": "Internet-facing Application Gateway has no web application firewall",
	"severity": "high",
	"category": "network",
	"resource_types": ["Microsoft.Network/applicationGateways"],
	"frameworks": {
		"nist_csf": ["PR.PT-4", "DE.CM-1"],
		"iso27001": ["A.8.20", "A.8.26"],
	},
	"description": "The Application Gateway has a public frontend but no web application firewall: its SKU tier is not WAF/WAF_v2, or no WAF policy is associated and the legacy WAF configuration is off. Web applications behind it receive SQL injection, XSS and other OWASP attacks unfiltered.",
	"remediation": {
		"portal": "Application Gateway > Web application firewall > upgrade the tier to WAF V2 and associate a WAF policy in Prevention mode.",
		"cli": "az network application-gateway update --resource-group <rg> --name <appgw> --sku WAF_v2 --set firewallPolicy.id=<waf-policy-id>",
	},
}

public_frontend(r) if {
	some f in lib.as_list(lib.prop(r, ["frontendIPConfigurations"], []))
	nw.has_ref(object.get(nw.sub_props(f), "publicIPAddress", null))
}

tier(r) := nw.lower_str(object.get(lib.prop(r, ["sku"], {}), "tier", ""))

waf_tier(r) if tier(r) in {"waf", "waf_v2"}

listeners(r) := lib.as_list(lib.prop(r, ["httpListeners"], []))

waf_active(r) if {
	waf_tier(r)
	nw.has_ref(lib.prop(r, ["firewallPolicy"], null))
}

waf_active(r) if {
	waf_tier(r)
	lib.is_true(lib.prop(r, ["webApplicationFirewallConfiguration", "enabled"], false))
}

waf_active(r) if {
	waf_tier(r)
	count(listeners(r)) > 0
	every l in listeners(r) {
		nw.has_ref(object.get(nw.sub_props(l), "firewallPolicy", null))
	}
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	public_frontend(r)
	not waf_active(r)
	details := {
		"sku_tier": object.get(lib.prop(r, ["sku"], {}), "tier", null),
		"firewallPolicy": nw.ref_id(lib.prop(r, ["firewallPolicy"], null)),
		"webApplicationFirewallConfiguration_enabled": lib.prop(r, ["webApplicationFirewallConfiguration", "enabled"], null),
		"listeners_without_policy": sort([n |
			some l in listeners(r)
			is_object(l)
			not nw.has_ref(object.get(nw.sub_props(l), "firewallPolicy", null))
			n := object.get(l, "name", "")
		]),
	}
}
