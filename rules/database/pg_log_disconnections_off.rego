# PostgreSQL flexible server parameter log_disconnections off (CIS v2.1.0 4.3.4 / v3.0.0
# 5.2.7, written for single server; same parameter on flexible server). Reads the related
# configurations/log_disconnections document.
package scanledger.rules.database.pg_log_disconnections_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-011",
	"title": "PostgreSQL flexible server does not log disconnections",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.4"],
		"cis_v3": ["5.2.7"],
		"nist_csf": ["PR.PT-1", "DE.CM-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "Server parameter log_disconnections is off, so session ends and durations are not logged, which leaves gaps when reconstructing who was connected when. Reads Microsoft.DBforPostgreSQL/flexibleServers/configurations 2022-12-01 `properties.value` of log_disconnections.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Server parameters > log_disconnections > set as described > Save.",
		"cli": "az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name log_disconnections --value on",
	},
	"related": {"configurations/log_disconnections": "2022-12-01"},
}

name := "log_disconnections"

deny contains lib.finding(r, "", {name: v}) if {
	some r in input.resources
	v := db.config_value(r, name)
	v in {"off", "0", "false"}
}

indeterminate contains lib.undecided(r, "server parameter log_disconnections was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter log_disconnections has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
