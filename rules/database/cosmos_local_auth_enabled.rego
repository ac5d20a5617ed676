# Cosmos DB for NoSQL account still accepting account keys (and resource tokens):
# disableLocalAuth is not true (default false). Enforcing Entra ID / RBAC as the only data
# plane authentication is supported for the API for NoSQL only, so MongoDB, Cassandra,
# Table and Gremlin accounts are skipped (as Azure Policy does).
package scanledger.rules.database.cosmos_local_auth_enabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-002",
	"title": "Cosmos DB account allows key-based authentication",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"cis_azure": ["4.5.3"],
		"cis_v3": ["5.4.3"],
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.16", "A.8.5"],
	},
	"description": "Local (key-based) authentication is enabled: anyone holding a primary or secondary key gets full, unattributed access to all data, outside Entra ID, RBAC and conditional access.",
	"remediation": {
		"portal": "Move clients to Microsoft Entra ID with Cosmos DB data-plane RBAC roles, then set disableLocalAuth to true (for example through the account's JSON / ARM template).",
		"cli": "az resource update --resource-group <rg> --name <account> --resource-type Microsoft.DocumentDB/databaseAccounts --set properties.disableLocalAuth=true",
	},
}

other_apis := {"enablemongo", "enablecassandra", "enabletable", "enablegremlin"}

non_nosql(r) if db.lstr(object.get(r, "kind", "")) == "mongodb"

non_nosql(r) if {
	some c in db.arr(lib.prop(r, ["capabilities"], []))
	is_object(c)
	db.lstr(object.get(c, "name", "")) in other_apis
}

deny contains lib.finding(r, "", {"disableLocalAuth": lib.prop(r, ["disableLocalAuth"], "(not set: false)")}) if {
	some r in input.resources
	not non_nosql(r)
	not lib.is_true(lib.prop(r, ["disableLocalAuth"], false))
}
