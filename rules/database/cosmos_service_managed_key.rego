# Cosmos DB account encrypted with service-managed keys: no `keyVaultKeyUri`. Checkov
# CKV_AZURE_100 ("Cosmos DB accounts have customer-managed keys to encrypt data at rest").
# Low: data is encrypted at rest either way.
package scanledger.rules.database.cosmos_service_managed_key

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-009",
	"title": "Cosmos DB account is not encrypted with a customer-managed key",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account's data is encrypted with service-managed keys (no keyVaultKeyUri), so the organisation cannot rotate, audit or revoke the key. Reads Microsoft.DocumentDB/databaseAccounts 2024-11-15 `properties.keyVaultKeyUri`.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Data Encryption > Customer-managed key > select the Key Vault key > Save (or set it when creating the account).",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --key-uri <versionless-key-uri>",
	},
}

deny contains lib.finding(r, "", {"keyVaultKeyUri": lib.prop(r, ["keyVaultKeyUri"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not db.nonempty(lib.prop(r, ["keyVaultKeyUri"], ""))
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
