# PostgreSQL flexible server with server parameter log_checkpoints off.
package scanledger.rules.database.pg_log_checkpoints_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-006",
	"title": "PostgreSQL flexible server does not log checkpoints",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.2"],
		"cis_v3": ["5.2.2"],
		"nist_csf": ["PR.PT-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "The log_checkpoints parameter is off, so the server log lacks checkpoint records used to diagnose performance problems, crashes and unexpected restarts.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Server parameters > log_checkpoints: ON > Save.",
		"cli": "az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name log_checkpoints --value on",
	},
	"related": {"configurations/log_checkpoints": "2022-12-01"},
}

name := "log_checkpoints"

deny contains lib.finding(r, "", {"log_checkpoints": v}) if {
	some r in input.resources
	v := db.config_value(r, name)
	v in {"off", "0", "false"}
}

indeterminate contains lib.undecided(r, "server parameter log_checkpoints was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter log_checkpoints has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
