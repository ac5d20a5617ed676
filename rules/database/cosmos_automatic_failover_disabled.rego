# Multi-region Cosmos DB account (single write region) without service-managed failover:
# enableAutomaticFailover is not true (API default false). Single-region accounts have no
# failover target and multi-write accounts fail over by design, so both are skipped.
package scanledger.rules.database.cosmos_automatic_failover_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-006",
	"title": "Multi-region Cosmos DB account has no service-managed failover",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"nist_csf": ["PR.PT-5"],
		"iso27001": ["A.8.14"],
	},
	"description": "The account replicates to several regions but writes stay unavailable during an outage of the write region until someone fails over manually, because service-managed failover is off.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Replicate data globally > Service-Managed Failover: On, set the failover priorities > Save.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --enable-automatic-failover true",
	},
}

deny contains lib.finding(r, "", {
	"enableAutomaticFailover": lib.prop(r, ["enableAutomaticFailover"], "(not set: false)"),
	"regions": count(db.arr(lib.prop(r, ["locations"], []))),
}) if {
	some r in input.resources
	count(db.arr(lib.prop(r, ["locations"], []))) >= 2
	not lib.is_true(lib.prop(r, ["enableMultipleWriteLocations"], false))
	not lib.is_true(lib.prop(r, ["enableAutomaticFailover"], false))
}
