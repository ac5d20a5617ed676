# PostgreSQL flexible server parameter log_connections off (CIS v2.1.0 4.3.3 / v3.0.0 5.2.6,
# written for single server; the parameter and its meaning are the same on flexible
# server). Reads the related configurations/log_connections document.
package scanledger.rules.database.pg_log_connections_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-010",
	"title": "PostgreSQL flexible server does not log connections",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.3"],
		"cis_v3": ["5.2.6"],
		"nist_csf": ["PR.PT-1", "DE.CM-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "Server parameter log_connections is off, so successful and attempted connections are not written to the server log and cannot be traced after an incident. Reads Microsoft.DBforPostgreSQL/flexibleServers/configurations 2022-12-01 `properties.value` of log_connections.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Server parameters > log_connections > set as described > Save.",
		"cli": "az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name log_connections --value on",
	},
	"related": {"configurations/log_connections": "2022-12-01"},
}

name := "log_connections"

deny contains lib.finding(r, "", {name: v}) if {
	some r in input.resources
	v := db.config_value(r, name)
	v in {"off", "0", "false"}
}

indeterminate contains lib.undecided(r, "server parameter log_connections was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter log_connections has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
