# Defender for Azure SQL Databases (SqlServers pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named SqlServers (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.sql_databases_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-003",
	"title": "Microsoft Defender for Azure SQL Databases plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.3"], "nist_csf": ["DE.CM-7", "DE.AE-2"], "iso27001": ["A.8.16"]},
	"description": "The subscription's SqlServers Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no SQL injection and anomalous-access alerts and vulnerability assessment for Azure SQL Database, Managed Instance and Synapse. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Azure SQL Databases: On > Save.",
		"cli": "az security pricing create --name SqlServers --tier standard",
	},
}

deny contains lib.finding(r, "SqlServers", details) if {
	some r in input.resources
	details := platform.free_plan(r, "SqlServers")
}

indeterminate contains lib.undecided(r, "the SqlServers pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "SqlServers")
}
