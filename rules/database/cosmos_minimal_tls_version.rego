# Cosmos DB account whose minimalTlsVersion is Tls (1.0) or Tls11. The documented default for
# new accounts is Tls12 and TLS 1.0/1.1 support was retired service-wide on 31 August 2025,
# so absent stays quiet and an explicit old value is low severity.
package scanledger.rules.database.cosmos_minimal_tls_version

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-004",
	"title": "Cosmos DB account minimum TLS version is below 1.2",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account is configured to accept TLS 1.0 or 1.1, deprecated protocol versions; the setting should state TLS 1.2 so the account does not depend on platform-wide enforcement.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Networking > Connectivity > Minimum Transport Layer Security Protocol: TLS 1.2 > Save.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --minimal-tls-version Tls12",
	},
}

deny contains lib.finding(r, "", {"minimalTlsVersion": v}) if {
	some r in input.resources
	v := lib.prop(r, ["minimalTlsVersion"], "Tls12")
	db.lstr(v) in {"tls", "tls10", "tls11"}
}
