# The Microsoft Defender for Endpoint integration setting (Microsoft.Security/settings named
# WDATP, kind DataExportSettings) is explicitly disabled. Only the subscription-level
# setting named WDATP is judged (not WDATP_EXCLUDE_LINUX_PUBLIC_PREVIEW, MCAS, Sentinel, ...).
package scanledger.rules.defender.endpoint_integration_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-015",
	"title": "Defender for Endpoint integration with Defender for Cloud is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/settings"],
	"frameworks": {
		"cis_azure": ["2.1.21"],
		"cis_v3": ["3.1.3.3"],
		"nist_csf": ["DE.CM-4"],
		"iso27001": ["A.8.7"],
	},
	"description": "Defender for Cloud does not deploy Microsoft Defender for Endpoint to the subscription's machines, so servers covered by Defender for Servers get no EDR sensor, no endpoint alerts and no software inventory.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Integrations (or Defender plans > Servers > Settings) > Endpoint protection: On > Save.",
		"cli": "az security setting update --name WDATP --data-export-settings enabled=true",
	},
}

wdatp(r) if {
	platform.subscription_scoped(r, `microsoft\.security/settings`)
	lower(platform.last_segment(r.id)) == "wdatp"
}

deny contains lib.finding(r, "WDATP", {"enabled": v}) if {
	some r in input.resources
	wdatp(r)
	v := lib.prop(r, ["enabled"], null)
	platform.off(v)
}

indeterminate contains lib.undecided(r, "the WDATP setting has no enabled flag") if {
	some r in input.resources
	wdatp(r)
	v := lib.prop(r, ["enabled"], null)
	not platform.off(v)
	not platform.on(v)
}
