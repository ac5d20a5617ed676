# The Defender Cloud Security Posture Management plan (pricing CloudPosture) is on the Free
# tier (foundational CSPM only): no attack path analysis, cloud security explorer,
# agentless scanning or data-aware posture. Prowler defender_ensure_defender_cspm_is_on.
package scanledger.rules.defender.cspm_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-021",
	"title": "Defender CSPM plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {
		"nist_csf": ["ID.RA-1", "DE.CM-8"],
		"iso27001": ["A.8.8", "A.5.7"],
	},
	"description": "The Defender CSPM plan is off, so the subscription gets only foundational posture recommendations: no attack paths, no agentless discovery of vulnerable machines and containers, no sensitive-data-aware risk prioritisation. Reads Microsoft.Security/pricings 2024-01-01 `properties.pricingTier`.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Defender CSPM: On > Save.",
		"cli": "az security pricing create --name CloudPosture --tier Standard",
	},
}

deny contains lib.finding(r, "CloudPosture", details) if {
	some r in input.resources
	details := platform.free_plan(r, "CloudPosture")
}

indeterminate contains lib.undecided(r, "the CloudPosture pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "CloudPosture")
}
