# PostgreSQL flexible server parameter logfiles.retention_days of 3 or fewer (CIS v3.0.0 5.2.4
# "greater than 3 days"; v2.1.0 4.3.6 asked the same of single server's
# log_retention_days). The value is a string of digits (1 to 7); default 3, so an unchanged
# server fires.
package scanledger.rules.database.pg_log_retention_short

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-012",
	"title": "PostgreSQL flexible server keeps server logs for 3 days or fewer",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.6"],
		"cis_v3": ["5.2.4"],
		"nist_csf": ["PR.PT-1", "DE.CM-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "Server logs are kept for 3 days or fewer (logfiles.retention_days), so connection and error logs of a weekend incident may be gone before anyone looks. Reads Microsoft.DBforPostgreSQL/flexibleServers/configurations 2022-12-01 `properties.value` of logfiles.retention_days.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Server parameters > logfiles.retention_days > set as described > Save.",
		"cli": "az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name logfiles.retention_days --value 7",
	},
	"related": {"configurations/logfiles.retention_days": "2022-12-01"},
}

name := "logfiles.retention_days"

deny contains lib.finding(r, "", {name: v}) if {
	some r in input.resources
	db.config_value(r, name) # a bare call first: see docs/rule-authoring.md (bytecode)
	v := db.config_value(r, name)
	db.num(v) <= 3
}

indeterminate contains lib.undecided(r, "server parameter logfiles.retention_days was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter logfiles.retention_days has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}

indeterminate contains lib.undecided(r, "server parameter logfiles.retention_days is not a number") if {
	some r in input.resources
	db.config_value(r, name) # a bare call first: see docs/rule-authoring.md (bytecode)
	v := db.config_value(r, name)
	not db.num(v)
}
