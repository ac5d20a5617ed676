# Azure Database for PostgreSQL single server (Microsoft.DBforPostgreSQL/servers) was retired
# on 28 March 2025. The rule also reads flexible servers so that it can show it tells the
# two products apart (only single servers fire).
package scanledger.rules.database.pg_single_server_retired

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-PG-009",
	"title": "PostgreSQL single server is a retired product",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/servers", "Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.IP-12", "ID.AM-2"],
		"iso27001": ["A.8.8"],
	},
	"description": "Azure Database for PostgreSQL single server was retired on 28 March 2025: it gets no security updates, SLA or support, and Microsoft may migrate or stop it at any time.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Migration > Create: migrate from the single server with the migration service, then delete the single server.",
		"cli": "az postgres flexible-server migration create --resource-group <rg> --name <target-flexible-server> --migration-name <migration> --properties <migration-properties.json>",
	},
}

deny contains lib.finding(r, "", {"type": r.type, "version": lib.prop(r, ["version"], null), "retired": "2025-03-28"}) if {
	some r in input.resources
	lower(r.type) == "microsoft.dbforpostgresql/servers"
}
