# Azure AI Search service reachable from any internet address: `publicNetworkAccess`
# enabled (absent means enabled) with no IP rules in `networkRuleSet.ipRules`, or with an
# IP rule covering a large part of the internet (a /8 or wider, the storage broad-range
# helper). Prowler aisearch_service_not_publicly_accessible. Medium like every "all
# networks" rule (docs/rule-authoring.md, Severity): each request still needs an API key
# or an Entra ID token.
package scanledger.rules.database.search_open_to_all_networks

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-SRCH-001",
	"title": "AI Search service accepts connections from all networks",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Search/searchServices"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The search service's endpoint accepts requests from any internet address, so a leaked admin or query key is enough to read or change indexes from anywhere. Reads Microsoft.Search/searchServices 2023-11-01 `properties.publicNetworkAccess` and `properties.networkRuleSet.ipRules[].value`.",
	"remediation": {
		"portal": "AI Search service > Settings > Networking > Public network access: Selected IP addresses (list the clients) or Disabled with private endpoints > Save.",
		"cli": "az search service update --resource-group <rg> --name <service> --public-network-access disabled",
	},
}

rules(r) := [v | some rule in lib.arr(lib.prop(r, ["networkRuleSet", "ipRules"], [])); v := object.get(lib.obj(rule), "value", ""); is_string(v); trim_space(v) != ""]

broad(r) := [v | some v in rules(r); slib.internet_wide(v)]

public(r) if not lib.in_ci(lib.prop(r, ["publicNetworkAccess"], "enabled"), {"disabled", "securedbyperimeter"})

open_to_all(r) if count(rules(r)) == 0

open_to_all(r) if count(broad(r)) > 0

deny contains lib.finding(r, "", {"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: enabled)"), "ipRules": rules(r), "broadRanges": broad(r)}) if {
	some r in input.resources
	not lib.no_properties(r)
	public(r)
	open_to_all(r)
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
