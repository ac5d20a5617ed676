# Azure SQL server with outbound networking unrestricted: `restrictOutboundNetworkAccess`
# not Enabled (Microsoft.Sql/servers 2021-11-01; absent means Disabled, the default). With
# it on, the server can reach only the FQDNs listed in its outbound firewall rules, which
# stops a compromised login from copying data out through features such as BULK INSERT,
# external tables or Azure Storage links. Low: defence in depth against exfiltration.
package scanledger.rules.database.sql_outbound_unrestricted

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-018",
	"title": "SQL server outbound network access is not restricted",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["PR.DS-5", "PR.AC-5"],
		"iso27001": ["A.8.12", "A.8.20"],
	},
	"description": "Outbound networking restrictions are off, so the server can send data to any storage account or endpoint that T-SQL features reach (BULK INSERT, external tables, backup to URL). Enable them and allow only the FQDNs the databases need. Reads Microsoft.Sql/servers 2021-11-01 `properties.restrictOutboundNetworkAccess`.",
	"remediation": {
		"portal": "SQL server > Security > Networking > Outbound networking > Restrict outbound networking > add the allowed FQDNs > Save.",
		"cli": "az sql server update --resource-group <rg> --name <server> --restrict-outbound-network-access true",
	},
}

deny contains lib.finding(r, "", {"restrictOutboundNetworkAccess": lib.prop(r, ["restrictOutboundNetworkAccess"], "(not set: Disabled)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	db.lstr(lib.prop(r, ["restrictOutboundNetworkAccess"], "Disabled")) != "enabled"
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
