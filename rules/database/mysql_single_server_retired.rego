# Azure Database for MySQL single server (Microsoft.DBforMySQL/servers) was retired on
# 16 September 2024. The rule also reads flexible servers to show it tells the two
# products apart (only single servers fire).
package scanledger.rules.database.mysql_single_server_retired

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-MY-007",
	"title": "MySQL single server is a retired product",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/servers", "Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.IP-12", "ID.AM-2"],
		"iso27001": ["A.8.8"],
	},
	"description": "Azure Database for MySQL single server was retired on 16 September 2024: it gets no security updates, SLA or support, and Microsoft may migrate or stop it at any time.",
	"remediation": {
		"portal": "Azure Database for MySQL flexible server > Create > Migrate from single server (or use Azure Database Migration Service), then delete the single server.",
		"cli": "az mysql flexible-server import create --data-source-type mysql_single --data-source <single-server> --resource-group <rg> --name <new-flexible-server>",
	},
}

deny contains lib.finding(r, "", {"type": r.type, "version": lib.prop(r, ["version"], null), "retired": "2024-09-16"}) if {
	some r in input.resources
	lower(r.type) == "microsoft.dbformysql/servers"
}
