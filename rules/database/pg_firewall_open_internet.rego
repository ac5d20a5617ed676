# PostgreSQL flexible server firewall rule admitting the whole internet
# (0.0.0.0-255.255.255.255, "Add 0.0.0.0 - 255.255.255.255" in the portal) or any range
# spanning at least a /8 of public addresses. Quiet when public access is Disabled.
package scanledger.rules.database.pg_firewall_open_internet

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-003",
	"title": "PostgreSQL flexible server firewall allows connections from the internet",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "A firewall rule admits any (or a huge slice of) internet address to the PostgreSQL endpoint, exposing it to password spraying and exploitation from anywhere.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Networking > Firewall rules: delete the wide rule and allow only the client addresses that need access > Save.",
		"cli": "az postgres flexible-server firewall-rule delete --resource-group <rg> --name <server> --rule-name <rule> --yes",
	},
	"related": {"firewallRules": "2022-12-01"},
}

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	db.flexible_firewall_applies(r)
	some x in db.open_firewall_rules(r)
}

indeterminate contains lib.undecided(r, "the server's firewall rules were not fetched") if {
	some r in input.resources
	db.flexible_firewall_applies(r)
	lib.related_missing(r, "firewallRules")
}
