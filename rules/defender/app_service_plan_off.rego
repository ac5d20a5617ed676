# Defender for App Service (AppServices pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named AppServices (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.app_service_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-002",
	"title": "Microsoft Defender for App Service plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.2"], "nist_csf": ["DE.CM-4", "DE.CM-7"], "iso27001": ["A.8.7", "A.8.16"]},
	"description": "The subscription's AppServices Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no detection of attacks against web apps and function apps (dangling DNS, web shells, suspicious requests). This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > App Service: On > Save.",
		"cli": "az security pricing create --name AppServices --tier standard",
	},
}

deny contains lib.finding(r, "AppServices", details) if {
	some r in input.resources
	details := platform.free_plan(r, "AppServices")
}

indeterminate contains lib.undecided(r, "the AppServices pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "AppServices")
}
