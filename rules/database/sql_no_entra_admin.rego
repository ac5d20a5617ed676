# Azure SQL server without a Microsoft Entra administrator. The server GET returns
# `administrators` only with $expand, so when it is absent the related list
# `administrators` decides (an empty list or 404 means none).
package scanledger.rules.database.sql_no_entra_admin

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-007",
	"title": "SQL server has no Microsoft Entra administrator",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_azure": ["4.1.4"],
		"cis_v3": ["5.1.4"],
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.16", "A.8.5"],
	},
	"description": "No Microsoft Entra ID administrator is set, so the server can only be administered with SQL logins and passwords, outside central identity management, MFA and conditional access.",
	"remediation": {
		"portal": "SQL server > Settings > Microsoft Entra ID > Set admin: choose a group > Save.",
		"cli": "az sql server ad-admin create --resource-group <rg> --server-name <server> --display-name <group-name> --object-id <group-object-id>",
	},
	"related": {"administrators": "2021-11-01"},
}

deny contains lib.finding(r, "", {"administrators": []}) if {
	some r in input.resources
	lib.has_related(r, "administrators")
	count(db.sql_entra_admins(r)) == 0
}

indeterminate contains lib.undecided(r, "the server's Entra administrators were not fetched") if {
	some r in input.resources
	not db.sql_admins_known(r)
}
