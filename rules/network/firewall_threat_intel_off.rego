# Azure Firewall threat-intelligence filtering turned Off. The setting lives in the
# firewall policy when one is attached (Firewall Manager; the firewall's own
# `threatIntelMode` is then ignored), else on the firewall (classic rules). Values are
# Alert, Deny, Off; the documented default is Alert ("enabled by default in alert mode"),
# so only an explicit Off fires.
package scanledger.rules.network.firewall_threat_intel_off

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-022",
	"title": "Azure Firewall threat intelligence is turned off",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/azureFirewalls", "Microsoft.Network/firewallPolicies"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "PR.PT-4"],
		"iso27001": ["A.5.7", "A.8.20"],
	},
	"description": "Threat-intelligence-based filtering is Off, so the firewall neither alerts on nor blocks traffic to and from IP addresses and domains Microsoft Threat Intelligence knows to be malicious (command-and-control, botnets, phishing).",
	"remediation": {
		"portal": "Firewall policy > Threat Intelligence > Threat intelligence mode: Alert and deny > Save (for a firewall with classic rules: Firewall > Threat intelligence).",
		"cli": "az network firewall policy update --resource-group <rg> --name <policy> --threat-intel-mode Deny",
	},
}

kind(r) := lower(r.type)

deny contains lib.finding(r, "", {"threatIntelMode": mode}) if {
	some r in input.resources
	kind(r) == "microsoft.network/firewallpolicies"
	mode := lib.prop(r, ["threatIntelMode"], "Alert")
	nw.is_ci(mode, "Off")
}

deny contains lib.finding(r, "", {"threatIntelMode": mode}) if {
	some r in input.resources
	kind(r) == "microsoft.network/azurefirewalls"
	not nw.has_ref(lib.prop(r, ["firewallPolicy"], null))
	mode := lib.prop(r, ["threatIntelMode"], "Alert")
	nw.is_ci(mode, "Off")
}
