# Azure SQL server whose TDE protector is a service-managed key rather than a customer-
# managed key in Key Vault (CIS v2.1.0 4.1.3 / v3.0.0 5.1.3). Reads the related
# document encryptionProtector/current (Microsoft.Sql/servers/encryptionProtector
# 2021-11-01 `properties.serverKeyType`, ServiceManaged or AzureKeyVault). Every server has
# one, so a 404 is treated like a failed fetch. Low: data is encrypted either way; a
# customer-managed key adds control over (and revocation of) the key.
package scanledger.rules.database.sql_tde_service_managed_key

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-015",
	"title": "SQL server TDE protector is not a customer-managed key",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_azure": ["4.1.3"],
		"cis_v3": ["5.1.3"],
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The server's transparent data encryption protector is a service-managed key, so the organisation cannot rotate, audit the use of, or revoke the key that protects its databases. Use a customer-managed key in Key Vault where the data calls for it. Reads Microsoft.Sql/servers/encryptionProtector 2021-11-01 `properties.serverKeyType`.",
	"remediation": {
		"portal": "SQL server > Security > Transparent data encryption > Customer-managed key > select the Key Vault key > Save.",
		"cli": "az sql server tde-key set --resource-group <rg> --server <server> --server-key-type AzureKeyVault --kid <key-uri>",
	},
	"related": {"encryptionProtector/current": "2021-11-01"},
}

path := "encryptionProtector/current"

key_type(r) := db.lstr(object.get(db.obj(lib.related(r, path)), ["properties", "serverKeyType"], "")) if lib.has_related(r, path)

deny contains lib.finding(r, "", {"serverKeyType": object.get(lib.related(r, path), ["properties", "serverKeyType"], null)}) if {
	some r in input.resources
	key_type(r) == "servicemanaged"
}

indeterminate contains lib.undecided(r, "the server's encryption protector was not fetched") if {
	some r in input.resources
	not key_type(r) in {"servicemanaged", "azurekeyvault"}
}
