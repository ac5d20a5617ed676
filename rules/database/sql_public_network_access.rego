# Azure SQL server reachable on its public endpoint. The property is optional in the API and
# servers that never set it keep a public endpoint, so absent counts as Enabled.
package scanledger.rules.database.sql_public_network_access

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-005",
	"title": "SQL server public network access is enabled",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_v3": ["5.1.7"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The server accepts connections on its public endpoint, guarded only by IP firewall rules; private endpoints keep database traffic off the internet entirely.",
	"remediation": {
		"portal": "SQL server > Security > Networking > Public access > Public network access: Disable (after creating a private endpoint) > Save.",
		"cli": "az sql server update --resource-group <rg> --name <server> --enable-public-network false",
	},
}

deny contains lib.finding(r, "", {"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: Enabled)")}) if {
	some r in input.resources
	db.sql_public_access(r) == "enabled"
}
