# Cosmos DB account without an approved private endpoint (CIS v2.1.0 4.5.2 / v3.0.0 5.4.2
# "Private Endpoints Are Used Where Possible"): `privateEndpointConnections` absent, empty
# or none Approved. Low: the IP and virtual network filters (AZ-COS-001) may restrict the
# public endpoint; a private endpoint takes traffic off it.
package scanledger.rules.database.cosmos_private_endpoint_missing

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-007",
	"title": "Cosmos DB account has no private endpoint",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"cis_azure": ["4.5.2"],
		"cis_v3": ["5.4.2"],
		"nist_csf": ["PR.AC-5", "PR.DS-2"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "No approved private endpoint connects to the account, so applications reach it over its public endpoint. Reads Microsoft.DocumentDB/databaseAccounts 2024-11-15 `properties.privateEndpointConnections[].properties.privateLinkServiceConnectionState.status`.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Networking > Private access > + Private endpoint (target sub-resource of the account's API).",
		"cli": "az network private-endpoint create --resource-group <rg> --name <pe> --vnet-name <vnet> --subnet <subnet> --private-connection-resource-id <account-id> --group-id Sql --connection-name <name>",
	},
}

deny contains lib.finding(r, "", {"privateEndpointConnections": count(db.arr(lib.prop(r, ["privateEndpointConnections"], [])))}) if {
	some r in input.resources
	not lib.no_properties(r)
	count(lib.approved_private_endpoints(r)) == 0
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
