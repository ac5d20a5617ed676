# Web application firewalls that only log: Detection mode, or a disabled policy.
# - Application Gateway with the legacy in-resource WAF configuration (no WAF policy
#   associated; when one is, the legacy block is ignored) in firewallMode Detection.
# - Application Gateway WAF policies and Front Door WAF policies in mode Detection or
#   with state/enabledState Disabled, when associated with something (gateways,
#   listeners, path rules / Front Door endpoints, routes, security policies): an
#   unassociated policy filters nothing either way.
# Explicit values only: ARM returns policySettings.mode (default Prevention) and state.
package scanledger.rules.network.waf_not_blocking

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-013",
	"title": "Web application firewall is in Detection mode or disabled",
	"severity": "medium",
	"category": "network",
	"resource_types": [
		"Microsoft.Network/applicationGateways",
		"Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies",
		"Microsoft.Network/FrontDoorWebApplicationFirewallPolicies",
	],
	"frameworks": {
		"nist_csf": ["PR.PT-4", "DE.CM-1"],
		"iso27001": ["A.8.20", "A.8.26"],
	},
	"description": "The web application firewall is deployed but does not block: it runs in Detection mode (matches are only logged) or its policy is disabled. Attacks reach the application while the WAF gives an impression of protection.",
	"remediation": {
		"portal": "Web Application Firewall policy > Overview > Switch to prevention mode (and Policy settings > Enabled); for a legacy gateway configuration: Application Gateway > Web application firewall > Firewall mode: Prevention.",
		"cli": "az network application-gateway waf-policy update --resource-group <rg> --name <policy> --set policySettings.mode=Prevention policySettings.state=Enabled",
	},
}

kind(r) := lower(r.type)

# Application Gateway, legacy WAF configuration.
deny contains lib.finding(r, "", details) if {
	some r in input.resources
	kind(r) == "microsoft.network/applicationgateways"
	nw.lower_str(object.get(lib.prop(r, ["sku"], {}), "tier", "")) in {"waf", "waf_v2"}
	not nw.has_ref(lib.prop(r, ["firewallPolicy"], null))
	lib.is_true(lib.prop(r, ["webApplicationFirewallConfiguration", "enabled"], false))
	mode := lib.prop(r, ["webApplicationFirewallConfiguration", "firewallMode"], "")
	nw.is_ci(mode, "Detection")
	details := {"webApplicationFirewallConfiguration_firewallMode": mode}
}

# WAF policies.
policy_kinds := {
	"microsoft.network/applicationgatewaywebapplicationfirewallpolicies": ["applicationGateways", "httpListeners", "pathBasedRules"],
	"microsoft.network/frontdoorwebapplicationfirewallpolicies": ["frontendEndpointLinks", "routingRuleLinks", "securityPolicyLinks"],
}

# The policy's on/off switch: `state` (Application Gateway) or `enabledState` (Front Door).
state_key := {
	"microsoft.network/applicationgatewaywebapplicationfirewallpolicies": "state",
	"microsoft.network/frontdoorwebapplicationfirewallpolicies": "enabledState",
}

associated(r) if {
	some key in policy_kinds[kind(r)]
	nw.non_empty(lib.prop(r, [key], []))
}

not_blocking(settings, _) if nw.is_ci(object.get(settings, "mode", ""), "Detection")

not_blocking(settings, key) if nw.is_ci(object.get(settings, key, ""), "Disabled")

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	key := state_key[kind(r)]
	associated(r)
	settings := lib.prop(r, ["policySettings"], {})
	is_object(settings)
	not_blocking(settings, key)
	details := {"mode": object.get(settings, "mode", null), key: object.get(settings, key, null)}
}
