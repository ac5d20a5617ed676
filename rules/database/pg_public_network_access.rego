# PostgreSQL flexible server with public network access. VNet-integrated servers
# (delegatedSubnetResourceId) never have it; when neither field is reported the rule
# cannot decide.
package scanledger.rules.database.pg_public_network_access

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-002",
	"title": "PostgreSQL flexible server public network access is enabled",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The server has a public endpoint guarded only by IP firewall rules; VNet integration or private endpoints keep database traffic off the internet.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Networking > Public access: clear 'Allow public access to this resource through the internet using a public IP address' (add a private endpoint first) > Save.",
		"cli": "az postgres flexible-server update --resource-group <rg> --name <server> --public-access Disabled",
	},
}

deny contains lib.finding(r, "", {"publicNetworkAccess": lib.prop(r, ["network", "publicNetworkAccess"], null)}) if {
	some r in input.resources
	db.flexible_public_access(r) == "enabled"
}

indeterminate contains lib.undecided(r, "network.publicNetworkAccess is not reported") if {
	some r in input.resources
	db.flexible_public_access(r) == "unknown"
}
