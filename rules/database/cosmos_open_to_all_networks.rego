# Cosmos DB account reachable from all networks: public network access on (absent means
# Enabled, the default) with no IP rules (nor legacy ipRangeFilter) and the virtual network
# filter off. Mirrors Azure Policy 862e97cf "Azure Cosmos DB accounts should have firewall
# rules". An IP rule of 0.0.0.0/0 restricts nothing and is not counted.
package scanledger.rules.database.cosmos_open_to_all_networks

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-001",
	"title": "Cosmos DB account accepts connections from all networks",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"cis_azure": ["4.5.1"],
		"cis_v3": ["5.4.1"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "Public network access is enabled with no IP firewall rules and no virtual network filter, so the account's endpoint accepts requests from any internet address; a leaked key is enough to read or change data.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Networking > Public network access: Selected networks (add virtual networks / IP ranges) or Disabled with private endpoints > Save.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --public-network-access Disabled",
	},
}

public(r) if not db.lstr(lib.prop(r, ["publicNetworkAccess"], "Enabled")) in {"disabled", "securedbyperimeter"}

ip_rules(r) := {v |
	some rule in db.arr(lib.prop(r, ["ipRules"], []))
	is_object(rule)
	v := trim_space(db.str(object.get(rule, "ipAddressOrRange", "")))
	v != ""
	v != "0.0.0.0/0"
}

legacy_filter(r) := {v |
	some part in split(db.str(lib.prop(r, ["ipRangeFilter"], "")), ",")
	v := trim_space(part)
	v != ""
	v != "0.0.0.0/0"
}

deny contains lib.finding(r, "", {
	"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: Enabled)"),
	"ipRules": lib.prop(r, ["ipRules"], []),
	"isVirtualNetworkFilterEnabled": lib.prop(r, ["isVirtualNetworkFilterEnabled"], false),
}) if {
	some r in input.resources
	public(r)
	count(ip_rules(r)) == 0
	count(legacy_filter(r)) == 0
	not lib.is_true(lib.prop(r, ["isVirtualNetworkFilterEnabled"], false))
}
