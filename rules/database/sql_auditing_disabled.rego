# Azure SQL logical server without server-level auditing. The blob auditing policy lives
# in the child `auditingSettings/default`, which Resource Graph does not carry.
# A 404 (null) means no policy was ever written: auditing is off (Azure's default).
package scanledger.rules.database.sql_auditing_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-001",
	"title": "SQL server auditing is not enabled",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_azure": ["4.1.1"],
		"cis_v3": ["5.1.1"],
		"nist_csf": ["PR.PT-1", "DE.CM-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "Server-level auditing is off, so logins, permission changes and queries against every database on the server leave no audit trail for investigations or compliance.",
	"remediation": {
		"portal": "SQL server > Security > Auditing > Enable Azure SQL Auditing: On, choose a Log Analytics workspace or storage account > Save.",
		"cli": "az sql server audit-policy update --resource-group <rg> --name <server> --state Enabled --lats Enabled --lawri <log-analytics-workspace-id>",
	},
	"related": {"auditingSettings/default": "2021-11-01"},
}

path := "auditingSettings/default"

state(r) := db.str(object.get(db.obj(object.get(lib.related(r, path), "properties", {})), "state", "")) if is_object(lib.related(r, path))

deny contains lib.finding(r, "", {"state": s}) if {
	some r in input.resources
	s := state(r)
	s != ""
	lower(s) != "enabled"
}

deny contains lib.finding(r, "", {"state": "(no auditing policy)"}) if {
	some r in input.resources
	lib.has_related(r, path)
	lib.related(r, path) == null
}

indeterminate contains lib.undecided(r, "the server's auditing settings (auditingSettings/default) were not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}

indeterminate contains lib.undecided(r, "the server's auditing settings report no state") if {
	some r in input.resources
	state(r) == ""
}
