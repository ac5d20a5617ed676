# PostgreSQL flexible server without connection throttling: server parameter
# connection_throttle.enable (the flexible-server name of single server's
# connection_throttling) is off, its default.
package scanledger.rules.database.pg_connection_throttling_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-007",
	"title": "PostgreSQL flexible server does not throttle failed logins",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.5"],
		"cis_v3": ["5.2.3"],
		"nist_csf": ["PR.AC-7"],
		"iso27001": ["A.8.5"],
	},
	"description": "connection_throttle.enable is off, so a client IP that keeps failing password logins is never temporarily blocked, which makes brute-force attacks cheaper.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Server parameters > connection_throttle.enable: ON > Save.",
		"cli": "az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name connection_throttle.enable --value on",
	},
	"related": {"configurations/connection_throttle.enable": "2022-12-01"},
}

name := "connection_throttle.enable"

deny contains lib.finding(r, "", {"connection_throttle.enable": v}) if {
	some r in input.resources
	v := db.config_value(r, name)
	v in {"off", "0", "false"}
}

indeterminate contains lib.undecided(r, "server parameter connection_throttle.enable was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter connection_throttle.enable has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
