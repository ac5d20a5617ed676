# "Allow public access from any Azure service within Azure to this server": the
# 0.0.0.0-0.0.0.0 firewall rule (AllowAllAzureServicesAndResourcesWithinAzureIps_*),
# which admits every Azure tenant's resources. Quiet when public access is Disabled.
package scanledger.rules.database.pg_firewall_allow_azure_services

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-004",
	"title": "PostgreSQL flexible server firewall allows all Azure services",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"cis_azure": ["4.3.7"],
		"cis_v3": ["5.2.5"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "The 0.0.0.0-0.0.0.0 rule lets any resource hosted in Azure, including other customers' workloads, reach the server's login prompt.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > Networking > clear 'Allow public access from any Azure service within Azure to this server' > Save.",
		"cli": "az postgres flexible-server firewall-rule delete --resource-group <rg> --name <server> --rule-name <AllowAllAzureServicesAndResourcesWithinAzureIps-rule> --yes",
	},
	"related": {"firewallRules": "2022-12-01"},
}

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	db.flexible_firewall_applies(r)
	some x in db.azure_services_rules(r)
}

indeterminate contains lib.undecided(r, "the server's firewall rules were not fetched") if {
	some r in input.resources
	db.flexible_firewall_applies(r)
	lib.related_missing(r, "firewallRules")
}
