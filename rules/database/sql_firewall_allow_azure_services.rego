# The 0.0.0.0-0.0.0.0 rule ("Allow Azure services and resources to access this server",
# AllowAllWindowsAzureIps) admits traffic from every Azure resource of every tenant, not
# only the owner's. Quiet when public network access is Disabled or SecuredByPerimeter.
package scanledger.rules.database.sql_firewall_allow_azure_services

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-004",
	"title": "SQL server firewall allows all Azure services",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_azure": ["4.1.2"],
		"cis_v3": ["5.1.2"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "The 'Allow Azure services and resources to access this server' rule (0.0.0.0-0.0.0.0) lets any resource hosted in Azure, including other customers' VMs and functions, reach the server's login prompt.",
	"remediation": {
		"portal": "SQL server > Security > Networking > Exceptions: clear 'Allow Azure services and resources to access this server'; use virtual network rules or private endpoints instead > Save.",
		"cli": "az sql server firewall-rule delete --resource-group <rg> --server <server> --name AllowAllWindowsAzureIps",
	},
	"related": {"firewallRules": "2021-11-01"},
}

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	db.sql_firewall_applies(r)
	some x in db.azure_services_rules(r)
}

indeterminate contains lib.undecided(r, "the server's firewall rules were not fetched") if {
	some r in input.resources
	db.sql_firewall_applies(r)
	lib.related_missing(r, "firewallRules")
}
