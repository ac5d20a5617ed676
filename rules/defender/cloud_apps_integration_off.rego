# The Microsoft Defender for Cloud Apps integration setting (Microsoft.Security/settings
# named MCAS, kind DataExportSettings) is disabled (CIS v2.1.0 2.1.20 / v3.0.0 3.1.1.2).
# Only the subscription-level setting named MCAS is judged.
package scanledger.rules.defender.cloud_apps_integration_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-023",
	"title": "Defender for Cloud Apps integration with Defender for Cloud is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/settings"],
	"frameworks": {
		"cis_azure": ["2.1.20"],
		"cis_v3": ["3.1.1.2"],
		"nist_csf": ["DE.CM-1", "DE.AE-2"],
		"iso27001": ["A.8.16"],
	},
	"description": "The Microsoft Defender for Cloud Apps integration is off, so Defender for Cloud does not share its alerts and posture data with Defender for Cloud Apps (and its session and app-governance signals are not correlated with them). Reads Microsoft.Security/settings 2022-05-01 `properties.enabled` of the setting named MCAS.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Integrations > Allow Microsoft Defender for Cloud Apps to access my data > Save.",
		"cli": "az security setting update --name MCAS --enabled true",
	},
}

mcas(r) if {
	platform.subscription_scoped(r, `microsoft\.security/settings`)
	lower(platform.last_segment(r.id)) == "mcas"
}

deny contains lib.finding(r, "MCAS", {"enabled": lib.prop(r, ["enabled"], null)}) if {
	some r in input.resources
	mcas(r)
	platform.off(lib.prop(r, ["enabled"], null))
}

indeterminate contains lib.undecided(r, "the MCAS setting has no enabled flag") if {
	some r in input.resources
	mcas(r)
	v := lib.prop(r, ["enabled"], null)
	not platform.off(v)
	not platform.on(v)
}
