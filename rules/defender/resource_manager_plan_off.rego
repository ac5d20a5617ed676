# Defender for Resource Manager (Arm pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named Arm (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.resource_manager_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-010",
	"title": "Microsoft Defender for Resource Manager plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.11"], "nist_csf": ["DE.CM-3", "DE.CM-7"], "iso27001": ["A.8.16"]},
	"description": "The subscription's Arm Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no alerts on suspicious management-plane operations (toolkits such as MicroBurst, persistence, lateral movement through ARM). This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Resource Manager: On > Save.",
		"cli": "az security pricing create --name Arm --tier standard",
	},
}

deny contains lib.finding(r, "Arm", details) if {
	some r in input.resources
	details := platform.free_plan(r, "Arm")
}

indeterminate contains lib.undecided(r, "the Arm pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "Arm")
}
