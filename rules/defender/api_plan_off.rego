# Defender for APIs (Api pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named Api (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
# CIS v2.1.0 has no recommendation for this plan (it was added in later versions), so none is mapped.
package scanledger.rules.defender.api_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-011",
	"title": "Microsoft Defender for APIs plan is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"nist_csf": ["DE.CM-7", "DE.AE-2"], "iso27001": ["A.8.16"]},
	"description": "The subscription's Api Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no discovery and threat detection for APIs published through Azure API Management. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > APIs: On > Save.",
		"cli": "az security pricing create --name Api --tier standard --subplan P1",
	},
}

deny contains lib.finding(r, "Api", details) if {
	some r in input.resources
	details := platform.free_plan(r, "Api")
}

indeterminate contains lib.undecided(r, "the Api pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "Api")
}
