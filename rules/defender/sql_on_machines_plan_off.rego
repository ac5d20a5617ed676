# Defender for SQL Servers on Machines (SqlServerVirtualMachines pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named SqlServerVirtualMachines (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.sql_on_machines_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-004",
	"title": "Microsoft Defender for SQL Servers on Machines plan is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.4"], "nist_csf": ["DE.CM-7", "DE.AE-2"], "iso27001": ["A.8.16"]},
	"description": "The subscription's SqlServerVirtualMachines Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no SQL injection and anomalous-access alerts and vulnerability assessment for SQL Server running on VMs and Arc machines. This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > SQL Servers on Machines: On > Save.",
		"cli": "az security pricing create --name SqlServerVirtualMachines --tier standard",
	},
}

deny contains lib.finding(r, "SqlServerVirtualMachines", details) if {
	some r in input.resources
	details := platform.free_plan(r, "SqlServerVirtualMachines")
}

indeterminate contains lib.undecided(r, "the SqlServerVirtualMachines pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "SqlServerVirtualMachines")
}
