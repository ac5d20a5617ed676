# Defender for Storage (StorageAccounts pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named StorageAccounts (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.storage_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-007",
	"title": "Microsoft Defender for Storage plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.7"], "nist_csf": ["DE.CM-4", "DE.CM-7"], "iso27001": ["A.8.7", "A.8.16"]},
	"description": "The subscription's StorageAccounts Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no malware upload, sensitive-data exposure and anomalous-access alerts for storage accounts. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Storage: On > Save.",
		"cli": "az security pricing create --name StorageAccounts --tier standard --subplan DefenderForStorageV2",
	},
}

deny contains lib.finding(r, "StorageAccounts", details) if {
	some r in input.resources
	details := platform.free_plan(r, "StorageAccounts")
}

indeterminate contains lib.undecided(r, "the StorageAccounts pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "StorageAccounts")
}
