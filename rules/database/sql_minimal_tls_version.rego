# Azure SQL minimal TLS version below 1.2. Documented default when unset (or "None") is to
# allow every TLS version and unencrypted connections, so absent fires too.
package scanledger.rules.database.sql_minimal_tls_version

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-006",
	"title": "SQL server accepts TLS versions older than 1.2",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The server's minimal TLS version is 1.0, 1.1 or not enforced ('None' / unset, which also admits unencrypted connections), so clients can connect with deprecated, attackable protocol versions.",
	"remediation": {
		"portal": "SQL server > Security > Networking > Connectivity > Minimum TLS version: 1.2 (or 1.3) > Save.",
		"cli": "az sql server update --resource-group <rg> --name <server> --minimal-tls-version 1.2",
	},
}

weak := {"", "none", "0", "1.0", "1.1"}

deny contains lib.finding(r, "", {"minimalTlsVersion": lib.prop(r, ["minimalTlsVersion"], "(not set: all versions)")}) if {
	some r in input.resources
	v := lib.prop(r, ["minimalTlsVersion"], "")
	not is_number(v)
	db.lstr(v) in weak
}
