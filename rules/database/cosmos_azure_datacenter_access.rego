# Cosmos DB IP firewall containing 0.0.0.0 ("Accept connections from within public Azure
# datacenters"), which admits every Azure tenant's resources. Quiet when public network
# access is Disabled (IP rules then admit nothing). Mirrors Azure Policy 12339a85.
package scanledger.rules.database.cosmos_azure_datacenter_access

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-005",
	"title": "Cosmos DB account accepts connections from all Azure datacenters",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "The IP rule 0.0.0.0 lets requests from any public Azure datacenter address reach the account, which includes workloads of every other Azure customer.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Networking > Exceptions: clear 'Accept connections from within public Azure datacenters'; use virtual network rules or private endpoints > Save.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --ip-range-filter <trusted-cidr-list-without-0.0.0.0>",
	},
}

public(r) if not db.lstr(lib.prop(r, ["publicNetworkAccess"], "Enabled")) in {"disabled", "securedbyperimeter"}

azure_marker(r) if {
	some rule in db.arr(lib.prop(r, ["ipRules"], []))
	is_object(rule)
	trim_space(db.str(object.get(rule, "ipAddressOrRange", ""))) == "0.0.0.0"
}

azure_marker(r) if {
	some part in split(db.str(lib.prop(r, ["ipRangeFilter"], "")), ",")
	trim_space(part) == "0.0.0.0"
}

deny contains lib.finding(r, "0.0.0.0", {"ipAddressOrRange": "0.0.0.0"}) if {
	some r in input.resources
	public(r)
	azure_marker(r)
}
