# Defender for Key Vault (KeyVaults pricing) is on the Free tier for the subscription.
# Only the subscription-level pricing named KeyVaults (any case) is judged; other plans and
# resource-level pricings are ignored. Free = plan off; Standard (any subPlan) = on.
package scanledger.rules.defender.key_vault_plan_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-009",
	"title": "Microsoft Defender for Key Vault plan is off",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {"cis_azure": ["2.1.9"], "nist_csf": ["DE.CM-7", "DE.AE-2"], "iso27001": ["A.8.16"]},
	"description": "The subscription's KeyVaults Defender plan is on the Free tier, so Microsoft Defender for Cloud provides no alerts on unusual access to key vaults (access from TOR or suspicious IPs, unusual secret enumeration). This matters wherever the subscription hosts (or will host) such resources.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Defender plans > Key Vault: On > Save.",
		"cli": "az security pricing create --name KeyVaults --tier standard",
	},
}

deny contains lib.finding(r, "KeyVaults", details) if {
	some r in input.resources
	details := platform.free_plan(r, "KeyVaults")
}

indeterminate contains lib.undecided(r, "the KeyVaults pricing document has no pricingTier") if {
	some r in input.resources
	platform.tier_unknown(r, "KeyVaults")
}
