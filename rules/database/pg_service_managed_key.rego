# PostgreSQL flexible server encrypted with a service-managed key: `dataEncryption.type` not
# AzureKeyVault (absent means SystemManaged, the default). Low: data is encrypted at rest
# either way; a customer-managed key adds control over and revocation of the key.
package scanledger.rules.database.pg_service_managed_key

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-014",
	"title": "PostgreSQL flexible server is not encrypted with a customer-managed key",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The server's data is encrypted with a service-managed key (dataEncryption.type SystemManaged), so the organisation cannot rotate, audit or revoke the key. A customer-managed key can only be chosen when the server is created. Reads Microsoft.DBforPostgreSQL/flexibleServers `properties.dataEncryption.type`.",
	"remediation": {
		"portal": "Customer-managed keys are chosen at creation: create a server with Security > Data encryption > Customer-managed key (with a user-assigned identity), and restore or migrate into it.",
		"cli": "az postgres flexible-server create --resource-group <rg> --name <new-server> --key <key-uri> --identity <user-assigned-identity>",
	},
}

deny contains lib.finding(r, "", {"dataEncryption": lib.prop(r, ["dataEncryption"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	db.lstr(lib.prop(r, ["dataEncryption", "type"], "SystemManaged")) != "azurekeyvault"
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
