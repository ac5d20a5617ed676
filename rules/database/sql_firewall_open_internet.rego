# Azure SQL server firewall rule admitting the whole internet: 0.0.0.0-255.255.255.255 or
# any start/end range spanning at least a /8 of public addresses. Rules are ignored (and
# this stays quiet) when public network access is Disabled or SecuredByPerimeter.
package scanledger.rules.database.sql_firewall_open_internet

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-003",
	"title": "SQL server firewall allows connections from the internet",
	"severity": "high",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_azure": ["4.1.2"],
		"cis_v3": ["5.1.2"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "A server-level firewall rule admits any (or a huge slice of) internet address to the SQL endpoint, exposing every database on the server to password spraying and exploitation.",
	"remediation": {
		"portal": "SQL server > Security > Networking > Public access > Firewall rules: delete the wide rule and add only the client addresses that need access (or use private endpoints) > Save.",
		"cli": "az sql server firewall-rule delete --resource-group <rg> --server <server> --name <rule>",
	},
	"related": {"firewallRules": "2021-11-01"},
}

deny contains lib.finding(r, x.rule, object.union(x, {"publicNetworkAccess": db.sql_public_access(r)})) if {
	some r in input.resources
	db.sql_firewall_applies(r)
	some x in db.open_firewall_rules(r)
}

indeterminate contains lib.undecided(r, "the server's firewall rules were not fetched") if {
	some r in input.resources
	db.sql_firewall_applies(r)
	lib.related_missing(r, "firewallRules")
}
