# Defender for Azure Cosmos DB (CosmosDbs pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named CosmosDbs (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.cosmosdb_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-006",
	"title": "Microsoft Defender for Azure Cosmos DB plan is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.6"], "nist_csf": ["DE.CM-7", "DE.AE-2"], "iso27001": ["A.8.16"]},
	"description": "The subscription's CosmosDbs Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no SQL injection, anomalous access and data-exfiltration alerts for Cosmos DB accounts. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Azure Cosmos DB: On > Save.",
		"cli": "az security pricing create --name CosmosDbs --tier standard",
	},
}

deny contains lib.finding(r, "CosmosDbs", details) if {
	some r in input.resources
	details := platform.free_plan(r, "CosmosDbs")
}

indeterminate contains lib.undecided(r, "the CosmosDbs pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "CosmosDbs")
}
