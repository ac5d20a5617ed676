# MySQL flexible server whose audit log does not record connections: parameter
# audit_log_events (a comma-separated set such as CONNECTION,DML) lacks CONNECTION (CIS
# v2.1.0 4.4.4 / v3.0.0 5.3.4). Default is CONNECTION. Judged whether or not audit logging
# itself is on (AZ-MY-003 reports that), as the control does.
package scanledger.rules.database.mysql_audit_connection_events_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-MY-009",
	"title": "MySQL flexible server audit log does not record connections",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.4.4"],
		"cis_v3": ["5.3.4"],
		"nist_csf": ["PR.PT-1", "DE.CM-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "Server parameter audit_log_events does not include CONNECTION, so the audit log does not record logins and connection attempts, the events an investigation starts from. Reads Microsoft.DBforMySQL/flexibleServers/configurations 2023-12-30 `properties.value` of audit_log_events.",
	"remediation": {
		"portal": "Azure Database for MySQL flexible server > Settings > Server parameters > audit_log_events: include CONNECTION > Save.",
		"cli": "az mysql flexible-server parameter set --resource-group <rg> --server-name <server> --name audit_log_events --value CONNECTION",
	},
	"related": {"configurations/audit_log_events": "2023-12-30"},
}

name := "audit_log_events"

events(r) := {trim_space(e) | some e in split(db.config_value(r, name), ","); trim_space(e) != ""}

deny contains lib.finding(r, "", {name: db.config_value(r, name)}) if {
	some r in input.resources
	db.config_value(r, name)
	not "connection" in events(r)
}

indeterminate contains lib.undecided(r, "server parameter audit_log_events was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter audit_log_events has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
