# Cosmos DB account reachable from all networks: public network access on (absent means
# Enabled, the default) with no IP rules (nor legacy ipRangeFilter) that restrict and the
# virtual network filter off, or with an IP rule admitting an internet-wide range
# (0.0.0.0/0, or a public /8 or wider such as 0.0.0.0/1 + 128.0.0.0/1), which opens the
# account whatever else is listed. Mirrors Azure Policy 862e97cf "Azure Cosmos DB accounts
# should have firewall rules". Medium, like every "all networks" rule (docs/rule-authoring.md,
# Severity): each request still needs an account key or an Entra ID token.
package scanledger.rules.database.cosmos_open_to_all_networks

import data.scanledger.lib
import data.scanledger.lib.database as db
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-COS-001",
	"title": "Cosmos DB account accepts connections from all networks",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"cis_azure": ["4.5.1"],
		"cis_v3": ["5.4.1"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "Public network access is enabled with no IP firewall rules and no virtual network filter, or with an IP rule covering a large part of the internet (a /8 or wider), so the account's endpoint accepts requests from any internet address; a leaked key is enough to read or change data. Reads Microsoft.DocumentDB/databaseAccounts 2024-11-15 `properties.publicNetworkAccess`, `ipRules[].ipAddressOrRange`, `isVirtualNetworkFilterEnabled`.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Networking > Public network access: Selected networks (add virtual networks / IP ranges) or Disabled with private endpoints > Save.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --public-network-access Disabled",
	},
}

public(r) if not db.lstr(lib.prop(r, ["publicNetworkAccess"], "Enabled")) in {"disabled", "securedbyperimeter"}

# ip_values(r): the IP firewall entries, from ipRules and the legacy ipRangeFilter string.
ip_values(r) := {v |
	some rule in db.arr(lib.prop(r, ["ipRules"], []))
	is_object(rule)
	v := trim_space(db.str(object.get(rule, "ipAddressOrRange", "")))
	v != ""
} | {v |
	some part in split(db.str(lib.prop(r, ["ipRangeFilter"], "")), ",")
	v := trim_space(part)
	v != ""
}

# broad(v): an entry admitting a large part of the internet: 0.0.0.0/0, or a public IPv4
# range of /8 or wider such as 0.0.0.0/1 + 128.0.0.0/1 (the helper Key Vault and Storage
# use). The bare 0.0.0.0 is Cosmos DB's marker for "Azure datacenters" (AZ-COS-005).
broad(v) if {
	v != "0.0.0.0"
	slib.internet_wide(v)
}

broad_entries(r) := sort({v | some v in ip_values(r); broad(v)})

restricting(r) := {v | some v in ip_values(r); not broad(v)}

open_to_all(r) if {
	count(restricting(r)) == 0
	not lib.is_true(lib.prop(r, ["isVirtualNetworkFilterEnabled"], false))
}

open_to_all(r) if count(broad_entries(r)) > 0

deny contains lib.finding(r, "", {
	"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: Enabled)"),
	"ipRules": lib.prop(r, ["ipRules"], []),
	"isVirtualNetworkFilterEnabled": lib.prop(r, ["isVirtualNetworkFilterEnabled"], false),
	"broadRanges": broad_entries(r),
}) if {
	some r in input.resources
	public(r)
	open_to_all(r)
}
