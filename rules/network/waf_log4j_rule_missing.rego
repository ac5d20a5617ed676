# A WAF policy in use that does not apply managed rule 944240 ("Remote Command Execution:
# Java Process Spawn / Log4j2 JNDI lookup", CVE-2021-44228): no managed rule set that
# contains it, or the rule disabled in the policy's ruleGroupOverrides. Checkov
# CKV_AZURE_135 (Application Gateway) and CKV_AZURE_133 (Front Door). Rule sets holding it
# (Microsoft updated them in December 2021): Application Gateway OWASP 3.1 and 3.2 and
# Microsoft_DefaultRuleSet 2.x; Front Door DefaultRuleSet 1.0 and Microsoft_DefaultRuleSet
# 1.x and 2.x. OWASP 3.0 and 2.2.9 do not. Policies attached to nothing, or switched off
# (AZ-NET-013's), are not judged.
package scanledger.rules.network.waf_log4j_rule_missing

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-031",
	"title": "Web application firewall policy does not block Log4Shell (rule 944240)",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies", "Microsoft.Network/FrontDoorWebApplicationFirewallPolicies"],
	"frameworks": {
		"nist_csf": ["PR.PT-4", "DE.CM-4"],
		"iso27001": ["A.8.20", "A.8.8"],
	},
	"description": "The WAF policy protecting an application does not apply managed rule 944240, the signature for Log4Shell-style JNDI lookups (CVE-2021-44228): its managed rule set predates it, or the rule is disabled by an override. Reads Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies 2024-05-01 and Microsoft.Network/FrontDoorWebApplicationFirewallPolicies 2024-02-01 `properties.managedRules.managedRuleSets[]` (ruleSetType, ruleSetVersion, ruleGroupOverrides[].rules[] ruleId and state / enabledState).",
	"remediation": {
		"portal": "WAF policy > Settings > Managed rules > Assign a current rule set (OWASP 3.2 or Microsoft_DefaultRuleSet 2.1), and re-enable rule 944240 if an override disabled it > Save.",
		"cli": "az network application-gateway waf-policy managed-rule rule-set update --resource-group <rg> --policy-name <policy> --type Microsoft_DefaultRuleSet --version 2.1",
	},
}

kind(r) := lower(r.type)

policy_kinds := {
	"microsoft.network/applicationgatewaywebapplicationfirewallpolicies": ["applicationGateways", "httpListeners", "pathBasedRules"],
	"microsoft.network/frontdoorwebapplicationfirewallpolicies": ["frontendEndpointLinks", "routingRuleLinks", "securityPolicyLinks"],
}

state_key := {
	"microsoft.network/applicationgatewaywebapplicationfirewallpolicies": "state",
	"microsoft.network/frontdoorwebapplicationfirewallpolicies": "enabledState",
}

# The managed rule sets (type, version) that contain rule 944240, per policy kind.
covering := {
	"microsoft.network/applicationgatewaywebapplicationfirewallpolicies": {"owasp 3.1", "owasp 3.2", "microsoft_defaultruleset 2.0", "microsoft_defaultruleset 2.1"},
	"microsoft.network/frontdoorwebapplicationfirewallpolicies": {"defaultruleset 1.0", "microsoft_defaultruleset 1.0", "microsoft_defaultruleset 1.1", "microsoft_defaultruleset 2.0", "microsoft_defaultruleset 2.1"},
}

associated(r) if {
	some key in policy_kinds[kind(r)]
	nw.non_empty(lib.prop(r, [key], []))
}

switched_off(r) if nw.is_ci(lib.prop(r, ["policySettings", state_key[kind(r)]], ""), "Disabled")

rule_sets(r) := [s | some s in lib.arr(lib.prop(r, ["managedRules", "managedRuleSets"], [])); is_object(s)]

set_name(s) := concat(" ", [nw.lower_str(object.get(s, "ruleSetType", "")), nw.lower_str(object.get(s, "ruleSetVersion", ""))])

# disabled_944240(s): an override in the set turns the rule off (Application Gateway
# `state`, Front Door `enabledState`).
disabled_944240(s) if {
	some g in lib.arr(object.get(s, "ruleGroupOverrides", []))
	some rule in lib.arr(object.get(lib.obj(g), "rules", []))
	object.get(lib.obj(rule), "ruleId", "") == "944240"
	some key in ["state", "enabledState"]
	nw.is_ci(object.get(lib.obj(rule), key, ""), "Disabled")
}

protected(r) if {
	some s in rule_sets(r)
	set_name(s) in covering[kind(r)]
	not disabled_944240(s)
}

deny contains lib.finding(r, "", {"managedRuleSets": [set_name(s) | some s in rule_sets(r)]}) if {
	some r in input.resources
	associated(r)
	not switched_off(r)
	not protected(r)
}

indeterminate contains lib.undecided(r, "the WAF policy document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
