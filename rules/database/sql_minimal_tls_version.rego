# Azure SQL server whose minimalTlsVersion is not 1.2 or later: 1.0, 1.1, "None"/"0" or
# unset (the old default, "no minimum"). Configuration hygiene, low: Azure retired TLS 1.0
# and 1.1 for Azure SQL Database and Managed Instance on 31 August 2025 (Microsoft Learn,
# "Configure minimal TLS version", learn.microsoft.com/azure/azure-sql/managed-instance/
# minimal-tls-version-configure), so those versions no longer connect; and the Azure SQL
# team's notice "Azure SQL is deprecating the No Minimum TLS (MinTLS None) configuration"
# (techcommunity.microsoft.com, 6 April 2026) removes "None" for new servers after 15 July
# 2026 and moves existing ones to 1.2. Until then "None" is documented as also admitting
# unencrypted connections, which the finding's details say. 1.2 and 1.3 pass.
package scanledger.rules.database.sql_minimal_tls_version

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-006",
	"title": "SQL server minimal TLS version is not set to 1.2 or later",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The server's minimalTlsVersion is 1.0, 1.1, 'None' or not set. Azure SQL stopped accepting TLS 1.0 and 1.1 on 31 August 2025 and is removing 'None' (documented as also admitting unencrypted connections) in 2026; set 1.2 so the server states what is enforced rather than relying on the platform migration. Reads Microsoft.Sql/servers 2021-11-01 `properties.minimalTlsVersion`.",
	"remediation": {
		"portal": "SQL server > Security > Networking > Connectivity > Minimum TLS version: 1.2 (or 1.3) > Save.",
		"cli": "az sql server update --resource-group <rg> --name <server> --minimal-tls-version 1.2",
	},
}

weak := {"", "none", "0", "1.0", "1.1"}

deny contains lib.finding(r, "", {"minimalTlsVersion": lib.prop(r, ["minimalTlsVersion"], "(not set: no minimum)")}) if {
	some r in input.resources
	v := lib.prop(r, ["minimalTlsVersion"], "")
	not is_number(v)
	db.lstr(v) in weak
}
