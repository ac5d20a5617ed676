# PostgreSQL flexible server accepting unencrypted connections: server parameter
# require_secure_transport is off (Azure's default is on). Read from the related
# configuration document; 404 (null) or a missing value is undecidable.
package scanledger.rules.database.pg_require_secure_transport_off

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-001",
	"title": "PostgreSQL flexible server allows unencrypted connections",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.1"],
		"cis_v3": ["5.2.1"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The require_secure_transport parameter is off, so clients may connect without TLS and send credentials and query data in clear text.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Server parameters > require_secure_transport: ON > Save.",
		"cli": "az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name require_secure_transport --value on",
	},
	"related": {"configurations/require_secure_transport": "2022-12-01"},
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
