# Application Gateways whose TLS policy still allows TLS 1.0 or 1.1 to clients: the
# predefined AppGwSslPolicy20150501 (min TLS 1.0) or AppGwSslPolicy20170401 (min TLS
# 1.1), a Custom/CustomV2 policy with minProtocolVersion TLSv1_0/TLSv1_1, or the legacy
# `disabledSslProtocols` list that leaves one of them enabled. Checked on the gateway
# policy (when it has an HTTPS listener) and on each SSL profile (sub_item
# "sslProfiles/<name>"). An absent (or empty) sslPolicy on a gateway with an HTTPS listener
# fires too: the default it falls back to depends on the API version the gateway was
# created with, AppGwSslPolicy20150501 (TLS 1.0) before 2023-02-01 and
# AppGwSslPolicy20220101 (TLS 1.2) since (learn.microsoft.com, "Application Gateway TLS
# policy overview"), and the document does not say which: absent is not safe. Low: Azure
# stopped serving TLS 1.0/1.1 on Application Gateway on 31 August 2025, so this is a
# configuration to bring in line rather than an open hole.
package scanledger.rules.network.appgw_legacy_tls_policy

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-023",
	"title": "Application Gateway TLS policy allows TLS 1.0 or 1.1",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/applicationGateways"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The Application Gateway (or one of its SSL profiles) is configured with a TLS policy whose minimum version is TLS 1.0 or 1.1, deprecated protocols with known weaknesses, or states no TLS policy while serving HTTPS, so it runs the default of the API version that created it (TLS 1.0 before 2023-02-01). Azure retired them on Application Gateway on 31 August 2025; move the configuration to AppGwSslPolicy20220101 or a CustomV2 policy with TLS 1.2 minimum.",
	"remediation": {
		"portal": "Application Gateway > Listeners > SSL policy (and each SSL profile) > Change > choose AppGwSslPolicy20220101 or 20220101S > Save.",
		"cli": "az network application-gateway ssl-policy set --resource-group <rg> --gateway-name <appgw> --policy-type Predefined --name AppGwSslPolicy20220101",
	},
}

weak_predefined := {"appgwsslpolicy20150501", "appgwsslpolicy20170401"}

weak_versions := {"tlsv1_0", "tlsv1_1"}

# weak(policy) := why, for an sslPolicy object that admits TLS 1.0 or 1.1.
weak(policy) := {"policyName": name} if {
	nw.lower_str(object.get(policy, "policyType", "Predefined")) == "predefined"
	name := object.get(policy, "policyName", "")
	nw.lower_str(name) in weak_predefined
}

weak(policy) := {"policyType": object.get(policy, "policyType", null), "minProtocolVersion": v} if {
	nw.lower_str(object.get(policy, "policyType", "")) in {"custom", "customv2"}
	v := object.get(policy, "minProtocolVersion", "")
	nw.lower_str(v) in weak_versions
}

# Legacy form: only a list of disabled protocols, no policy type or name.
weak(policy) := {"disabledSslProtocols": disabled} if {
	object.get(policy, "policyType", null) == null
	object.get(policy, "policyName", null) == null
	disabled := object.get(policy, "disabledSslProtocols", null)
	is_array(disabled)
	still_on := {v | some v in weak_versions; not v in {nw.lower_str(d) | some d in disabled}}
	count(still_on) > 0
}

https_listener(r) if {
	some l in lib.as_list(lib.prop(r, ["httpListeners"], []))
	nw.is_ci(object.get(nw.sub_props(l), "protocol", ""), "Https")
}

deny contains lib.finding(r, "", why) if {
	some r in input.resources
	https_listener(r)
	policy := lib.prop(r, ["sslPolicy"], null)
	is_object(policy)
	why := weak(policy)
}

# No policy stated: the gateway runs the default of the API version that created it.
deny contains lib.finding(r, "", {
	"sslPolicy": lib.prop(r, ["sslPolicy"], null),
	"default": "AppGwSslPolicy20150501 (TLS 1.0) for gateways created with API versions before 2023-02-01, AppGwSslPolicy20220101 (TLS 1.2) since",
}) if {
	some r in input.resources
	https_listener(r)
	not stated(lib.prop(r, ["sslPolicy"], null))
}

# stated(policy): the sslPolicy object names a policy, a type, a minimum version or the
# legacy list of disabled protocols.
stated(policy) if {
	is_object(policy)
	some key in ["policyType", "policyName", "minProtocolVersion", "disabledSslProtocols"]
	object.get(policy, key, null) != null
}

deny contains lib.finding(r, concat("/", ["sslProfiles", p.name]), object.union(why, {"sslProfile": p.name})) if {
	some r in input.resources
	some p in lib.as_list(lib.prop(r, ["sslProfiles"], []))
	is_string(p.name)
	policy := object.get(nw.sub_props(p), "sslPolicy", null)
	is_object(policy)
	why := weak(policy)
}
