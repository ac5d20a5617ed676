# Azure SQL database with transparent data encryption off (CIS v2.1.0 4.1.5 / v3.0.0 5.1.5
# "Ensure that 'Data encryption' is set to 'On' on a SQL Database"). Reads the related
# document transparentDataEncryption/current of each database (Microsoft.Sql/servers/
# databases/transparentDataEncryption 2021-11-01 `properties.state`, Enabled or Disabled).
# The master database (kind "...,system") is encrypted by the service and not judged. A 404
# cannot happen for an existing database and is treated like a failed fetch.
package scanledger.rules.database.sql_tde_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-014",
	"title": "SQL database transparent data encryption is off",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers/databases"],
	"frameworks": {
		"cis_azure": ["4.1.5"],
		"cis_v3": ["5.1.5"],
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "Transparent data encryption is disabled on the database, so its data files, logs and backups are stored unencrypted; anyone who obtains them reads the data. TDE is on by default for new databases, so off means someone turned it off. Reads Microsoft.Sql/servers/databases/transparentDataEncryption 2021-11-01 `properties.state`.",
	"remediation": {
		"portal": "SQL database > Security > Transparent data encryption > Data encryption: On > Save.",
		"cli": "az sql db tde set --resource-group <rg> --server <server> --database <db> --status Enabled",
	},
	"related": {"transparentDataEncryption/current": "2021-11-01"},
}

path := "transparentDataEncryption/current"

user_database(r) if {
	not contains(db.lstr(object.get(r, "kind", "")), "system")
	db.lstr(object.get(r, "name", "")) != "master"
}

tde_state(r) := db.lstr(object.get(db.obj(lib.related(r, path)), ["properties", "state"], "")) if lib.has_related(r, path)

deny contains lib.finding(r, "", {"state": object.get(lib.related(r, path), ["properties", "state"], null)}) if {
	some r in input.resources
	user_database(r)
	tde_state(r) == "disabled"
}

indeterminate contains lib.undecided(r, "the database's transparent data encryption state was not fetched") if {
	some r in input.resources
	user_database(r)
	not tde_state(r) in {"enabled", "disabled"}
}
