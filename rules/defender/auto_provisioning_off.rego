# Auto-provisioning of the Log Analytics agent is off (Microsoft.Security/
# autoProvisioningSettings/default `autoProvision` Off; CIS v2.1.0 2.1.14 / v3.0.0 3.1.1.1).
# Info: Microsoft retired the Log Analytics agent on 31 August 2024 and Defender for Servers
# no longer depends on it (Defender for Endpoint and agentless scanning replace it), so the
# control is kept for benchmark coverage, not because the setting protects anything today.
package scanledger.rules.defender.auto_provisioning_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-025",
	"title": "Defender for Cloud auto-provisioning of the Log Analytics agent is off",
	"severity": "info",
	"category": "defender",
	"resource_types": ["Microsoft.Security/autoProvisioningSettings"],
	"frameworks": {
		"cis_azure": ["2.1.14"],
		"cis_v3": ["3.1.1.1"],
		"nist_csf": ["DE.CM-1"],
		"iso27001": ["A.8.16"],
	},
	"description": "Defender for Cloud does not install the Log Analytics agent on new machines. The agent was retired on 31 August 2024; use Defender for Endpoint integration (AZ-DEF-015) and agentless scanning (AZ-DEF-018) for coverage, and treat this finding as benchmark hygiene. Reads Microsoft.Security/autoProvisioningSettings 2017-08-01-preview `properties.autoProvision`.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Settings & monitoring > Log Analytics agent: On (or accept the CIS control as not applicable after the agent's retirement).",
		"cli": "az security auto-provisioning-setting update --name default --auto-provision On",
	},
}

default_setting(r) if {
	platform.subscription_scoped(r, `microsoft\.security/autoprovisioningsettings`)
	lower(platform.last_segment(r.id)) == "default"
}

deny contains lib.finding(r, "", {"autoProvision": lib.prop(r, ["autoProvision"], null)}) if {
	some r in input.resources
	default_setting(r)
	platform.off(lib.prop(r, ["autoProvision"], null))
}

indeterminate contains lib.undecided(r, "the auto-provisioning setting has no autoProvision value") if {
	some r in input.resources
	default_setting(r)
	v := lib.prop(r, ["autoProvision"], null)
	not platform.off(v)
	not platform.on(v)
}
