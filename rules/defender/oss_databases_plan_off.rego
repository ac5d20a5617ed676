# Defender for open-source relational databases (OpenSourceRelationalDatabases pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named OpenSourceRelationalDatabases (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.oss_databases_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-005",
	"title": "Microsoft Defender for open-source relational databases plan is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.5"], "nist_csf": ["DE.CM-7", "DE.AE-2"], "iso27001": ["A.8.16"]},
	"description": "The subscription's OpenSourceRelationalDatabases Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no brute-force and anomalous-access alerts for Azure Database for PostgreSQL, MySQL and MariaDB. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > open-source relational databases: On > Save.",
		"cli": "az security pricing create --name OpenSourceRelationalDatabases --tier standard",
	},
}

deny contains lib.finding(r, "OpenSourceRelationalDatabases", details) if {
	some r in input.resources
	details := platform.free_plan(r, "OpenSourceRelationalDatabases")
}

indeterminate contains lib.undecided(r, "the OpenSourceRelationalDatabases pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "OpenSourceRelationalDatabases")
}
