# MySQL flexible server whose tls_version parameter (a comma-separated list such as
# "TLSv1.2,TLSv1.3") still includes TLSv1 or TLSv1.1. The default is TLSv1.2.
package scanledger.rules.database.mysql_tls_version_legacy

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-MY-002",
	"title": "MySQL flexible server accepts TLS 1.0 or 1.1",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.4.2"],
		"cis_v3": ["5.3.2"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The tls_version parameter allows TLS 1.0 and/or 1.1, deprecated protocol versions with known weaknesses, so clients can negotiate them.",
	"remediation": {
		"portal": "Azure Database for MySQL flexible server > Settings > Server parameters > tls_version: TLSv1.2 (and TLSv1.3 if supported) only > Save (static parameter: restart the server).",
		"cli": "az mysql flexible-server parameter set --resource-group <rg> --server-name <server> --name tls_version --value TLSv1.2",
	},
	"related": {"configurations/tls_version": "2023-12-30"},
}

name := "tls_version"

legacy := {"tlsv1", "tlsv1.0", "tlsv1.1"}

deny contains lib.finding(r, "", {"tls_version": v, "legacy": sort(old)}) if {
	some r in input.resources
	v := db.config_value(r, name)
	old := {p | some part in split(v, ","); p := trim_space(part); p in legacy}
	count(old) > 0
}

indeterminate contains lib.undecided(r, "server parameter tls_version was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter tls_version has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
