# Cosmos DB account lets account-key clients change metadata (create/delete databases and
# containers, change throughput): disableKeyBasedMetadataWriteAccess is not true (default
# false). Moot, and quiet, when local (key) authentication is disabled altogether.
package scanledger.rules.database.cosmos_key_metadata_write

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-COS-003",
	"title": "Cosmos DB account keys can change databases and containers",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.8.2"],
	},
	"description": "Clients using account keys can create, delete or re-provision databases and containers, so a leaked application key can also destroy schema and change costs; metadata changes should go through Azure Resource Manager and RBAC.",
	"remediation": {
		"portal": "Use the account's ARM template or CLI to set disableKeyBasedMetadataWriteAccess to true after moving schema changes to ARM / Bicep / CLI.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --disable-key-based-metadata-write-access true",
	},
}

deny contains lib.finding(r, "", {"disableKeyBasedMetadataWriteAccess": lib.prop(r, ["disableKeyBasedMetadataWriteAccess"], "(not set: false)")}) if {
	some r in input.resources
	not lib.is_true(lib.prop(r, ["disableKeyBasedMetadataWriteAccess"], false))
	not lib.is_true(lib.prop(r, ["disableLocalAuth"], false))
}
