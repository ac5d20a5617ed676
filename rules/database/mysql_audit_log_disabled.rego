# MySQL flexible server with server parameter audit_log_enabled OFF (its default).
package scanledger.rules.database.mysql_audit_log_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-MY-003",
	"title": "MySQL flexible server audit logging is disabled",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.4.3"],
		"cis_v3": ["5.3.3"],
		"nist_csf": ["PR.PT-1", "DE.CM-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "The audit_log_enabled parameter is OFF, so connections, DDL and data access on the server are not audited and cannot be investigated after an incident.",
	"remediation": {
		"portal": "Azure Database for MySQL flexible server > Settings > Server parameters > audit_log_enabled: ON, then Monitoring > Diagnostic settings: send 'MySQL Audit Logs' to a workspace > Save.",
		"cli": "az mysql flexible-server parameter set --resource-group <rg> --server-name <server> --name audit_log_enabled --value ON",
	},
	"related": {"configurations/audit_log_enabled": "2023-12-30"},
}

name := "audit_log_enabled"

deny contains lib.finding(r, "", {"audit_log_enabled": v}) if {
	some r in input.resources
	v := db.config_value(r, name)
	v in {"off", "0", "false"}
}

indeterminate contains lib.undecided(r, "server parameter audit_log_enabled was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter audit_log_enabled has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
