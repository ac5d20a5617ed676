# Defender for DNS (pricing Dns) on the Free tier (CIS v2.1.0 2.1.10 / v3.0.0 3.1.16, both
# marked LEGACY: DNS protection is now part of Defender for Servers Plan 2, and the Dns
# pricing is reported `deprecated` where it is no longer offered separately). A pricing
# marked `deprecated: true` is not judged.
package scanledger.rules.defender.dns_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-022",
	"title": "Defender for DNS is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {
		"cis_azure": ["2.1.10"],
		"cis_v3": ["3.1.16"],
		"nist_csf": ["DE.CM-1"],
		"iso27001": ["A.8.16"],
	},
	"description": "Defender for DNS is off, so DNS queries from the subscription's resources to malicious domains, DNS tunnelling and other DNS-based attacks are not detected (unless Defender for Servers Plan 2 covers the machines). Reads Microsoft.Security/pricings 2024-01-01 `properties.pricingTier`.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > DNS: On > Save (or enable Defender for Servers Plan 2, which includes it).",
		"cli": "az security pricing create --name Dns --tier Standard",
	},
}

deny contains lib.finding(r, "Dns", details) if {
	some r in input.resources
	not lib.is_true(lib.prop(r, ["deprecated"], false))
	details := platform.free_plan(r, "Dns")
}

indeterminate contains lib.undecided(r, "the Dns pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "Dns")
}
