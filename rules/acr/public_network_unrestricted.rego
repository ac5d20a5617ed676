# The registry's public endpoint accepts connections from any address: publicNetworkAccess
# is not Disabled (default Enabled; null = default) and no network rule restricts it.
# Network rules (networkRuleSet) exist only on Premium: a Basic or Standard registry with
# public access is always open to the internet. A Premium registry passes when its
# networkRuleSet.defaultAction is Deny and no IP rule admits 0.0.0.0/0.
package scanledger.rules.acr.public_network_unrestricted

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-ACR-002",
	"title": "Container registry is reachable from the whole internet",
	"severity": "medium",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The registry accepts data-plane connections (login, pull, push) from any internet address, so a leaked token, admin password or service-principal secret can be used from anywhere to pull proprietary images or push malicious ones.",
	"remediation": {
		"portal": "Container registry (Premium) > Settings > Networking > Public access: Selected networks with your CIDRs, or Disabled with a private endpoint > Save.",
		"cli": "az acr update --name <registry> --public-network-enabled false",
	},
}

public_access(r) if not platform.str_eq(lib.prop(r, ["publicNetworkAccess"], null), "Disabled")

default_action(r) := a if {
	a := lib.prop(r, ["networkRuleSet", "defaultAction"], null)
	is_string(a)
}

default_action(r) := "Allow (default)" if {
	a := lib.prop(r, ["networkRuleSet", "defaultAction"], null)
	not is_string(a)
}

open_ip_rules(r) := [v |
	rules := lib.prop(r, ["networkRuleSet", "ipRules"], [])
	is_array(rules)
	some rule in rules
	is_object(rule)
	not platform.str_eq(object.get(rule, "action", "Allow"), "Deny")
	v := object.get(rule, "value", "")
	platform.open_range(v)
]

unrestricted(r) if not platform.acr_premium(r)

unrestricted(r) if {
	platform.acr_premium(r)
	not platform.str_eq(default_action(r), "Deny")
}

unrestricted(r) if {
	platform.acr_premium(r)
	count(open_ip_rules(r)) > 0
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	public_access(r)
	unrestricted(r)
	details := {
		"sku": platform.sku_name(r),
		"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
		"networkRuleSet.defaultAction": default_action(r),
		"open_ip_rules": open_ip_rules(r),
	}
}
