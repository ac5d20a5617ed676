# Defender for Containers (Containers pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named Containers (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.containers_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-008",
	"title": "Microsoft Defender for Containers plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.8"], "nist_csf": ["DE.CM-4", "DE.CM-7"], "iso27001": ["A.8.7", "A.8.16"]},
	"description": "The subscription's Containers Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no runtime threat detection for Kubernetes clusters and vulnerability assessment of container images in registries. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Containers: On > Save.",
		"cli": "az security pricing create --name Containers --tier standard",
	},
}

deny contains lib.finding(r, "Containers", details) if {
	some r in input.resources
	details := platform.free_plan(r, "Containers")
}

indeterminate contains lib.undecided(r, "the Containers pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "Containers")
}
