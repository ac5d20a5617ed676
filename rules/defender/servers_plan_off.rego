# Defender for Servers (VirtualMachines pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named VirtualMachines (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.servers_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-001",
	"title": "Microsoft Defender for Servers plan is off",
	"severity": "high",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.1"], "nist_csf": ["DE.CM-4", "DE.CM-7"], "iso27001": ["A.8.7", "A.8.16"]},
	"description": "The subscription's VirtualMachines Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no threat detection, Defender for Endpoint integration or vulnerability assessment for virtual machines, scale sets and Arc machines. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Servers: On > Save.",
		"cli": "az security pricing create --name VirtualMachines --tier standard --subplan P2",
	},
}

deny contains lib.finding(r, "VirtualMachines", details) if {
	some r in input.resources
	details := platform.free_plan(r, "VirtualMachines")
}

indeterminate contains lib.undecided(r, "the VirtualMachines pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "VirtualMachines")
}
