# Defender for Servers is on but agentless scanning for machines (extension
# AgentlessVmScanning) is off: disks are not snapshotted and scanned for vulnerabilities,
# secrets and malware. CIS v3.0.0 3.1.3.4. It is part of Plan 2; on Plan 1 the extension
# is not offered and the plan is not judged.
package scanledger.rules.defender.servers_agentless_scanning_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-018",
	"title": "Defender for Servers agentless scanning is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {
		"cis_v3": ["3.1.3.4"],
		"nist_csf": ["DE.CM-8", "ID.RA-1"],
		"iso27001": ["A.8.8"],
	},
	"description": "Defender for Servers Plan 2 is enabled without agentless scanning, so machines without a working agent are not assessed for vulnerabilities, exposed secrets or malware. Reads Microsoft.Security/pricings 2024-01-01 `properties.pricingTier` and `properties.extensions[]` (name AgentlessVmScanning, isEnabled).",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Servers > Settings > Agentless scanning for machines: On > Continue > Save.",
		"cli": "az security pricing create --name VirtualMachines --tier Standard --subplan P2 --extensions name=AgentlessVmScanning isEnabled=True",
	},
}

applies(r) if {
	platform.plan_on(r, "VirtualMachines")
	platform.str_eq(lib.prop(r, ["subPlan"], "P2"), "P2")
}

deny contains lib.finding(r, "VirtualMachines/AgentlessVmScanning", {"plan": "VirtualMachines", "extension": "AgentlessVmScanning", "extensions": lib.prop(r, ["extensions"], null)}) if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "AgentlessVmScanning") == "off"
}

indeterminate contains lib.undecided(r, "the VirtualMachines pricing document carries no extensions list") if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "AgentlessVmScanning") == "unknown"
}
