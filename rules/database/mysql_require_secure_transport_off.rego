# MySQL flexible server accepting unencrypted connections: server parameter
# require_secure_transport is OFF (Azure's default is ON).
package scanledger.rules.database.mysql_require_secure_transport_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-MY-001",
	"title": "MySQL flexible server allows unencrypted connections",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.4.1"],
		"cis_v3": ["5.3.1"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The require_secure_transport parameter is OFF, so clients may connect without TLS and send credentials and query data in clear text.",
	"remediation": {
		"portal": "Azure Database for MySQL flexible server > Settings > Server parameters > require_secure_transport: ON > Save.",
		"cli": "az mysql flexible-server parameter set --resource-group <rg> --server-name <server> --name require_secure_transport --value ON",
	},
	"related": {"configurations/require_secure_transport": "2023-12-30"},
}

name := "require_secure_transport"

deny contains lib.finding(r, "", {"require_secure_transport": v}) if {
	some r in input.resources
	v := db.config_value(r, name)
	v in {"off", "0", "false"}
}

indeterminate contains lib.undecided(r, "server parameter require_secure_transport was not fetched") if {
	some r in input.resources
	lib.related_missing(r, db.config_path(name))
}

indeterminate contains lib.undecided(r, "server parameter require_secure_transport has no readable value") if {
	some r in input.resources
	db.config_undecidable(r, name)
}
