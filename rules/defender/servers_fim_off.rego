# Defender for Servers Plan 2 is on but file integrity monitoring (extension
# FileIntegrityMonitoring, the Defender for Endpoint based FIM) is off: changes to
# operating system files, registry keys and application binaries are not tracked. CIS
# v3.0.0 3.1.3.5. Plan 1 does not offer it and is not judged.
package scanledger.rules.defender.servers_fim_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-019",
	"title": "Defender for Servers file integrity monitoring is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {
		"cis_v3": ["3.1.3.5"],
		"nist_csf": ["PR.DS-6", "DE.CM-7"],
		"iso27001": ["A.8.9", "A.8.16"],
	},
	"description": "Defender for Servers Plan 2 is enabled without file integrity monitoring, so tampering with system files, registry keys or binaries (a common persistence technique) goes unrecorded. Reads Microsoft.Security/pricings 2024-01-01 `properties.pricingTier` and `properties.extensions[]` (name FileIntegrityMonitoring, isEnabled).",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Servers > Settings > File Integrity Monitoring: On, choose the workspace > Continue > Save.",
		"cli": "az security pricing create --name VirtualMachines --tier Standard --subplan P2 --extensions name=FileIntegrityMonitoring isEnabled=True",
	},
}

applies(r) if {
	platform.plan_on(r, "VirtualMachines")
	platform.str_eq(lib.prop(r, ["subPlan"], "P2"), "P2")
}

deny contains lib.finding(r, "VirtualMachines/FileIntegrityMonitoring", {"plan": "VirtualMachines", "extension": "FileIntegrityMonitoring", "extensions": lib.prop(r, ["extensions"], null)}) if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "FileIntegrityMonitoring") == "off"
}

indeterminate contains lib.undecided(r, "the VirtualMachines pricing document carries no extensions list") if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "FileIntegrityMonitoring") == "unknown"
}
