# An Azure Firewall Premium policy whose intrusion detection and prevention system is off:
# `intrusionDetection.mode` Off, or no intrusionDetection (Off is the default). Standard
# and Basic policies have no IDPS and are not judged. Mode Alert detects, Deny also blocks;
# both pass.
package scanledger.rules.network.firewall_idps_off

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-032",
	"title": "Azure Firewall Premium policy has intrusion detection (IDPS) off",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/firewallPolicies"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "PR.PT-4"],
		"iso27001": ["A.8.16", "A.8.20"],
	},
	"description": "The Premium firewall policy has IDPS off, so traffic through the firewall is not inspected for known attack signatures (exploits, malware command-and-control) although the SKU paid for it. Reads Microsoft.Network/firewallPolicies 2024-05-01 `properties.sku.tier` and `properties.intrusionDetection.mode`.",
	"remediation": {
		"portal": "Firewall Policy > Settings > IDPS > IDPS mode: Alert and deny (or Alert) > Apply.",
		"cli": "az network firewall policy update --resource-group <rg> --name <policy> --idps-mode Deny",
	},
}

deny contains lib.finding(r, "", {"intrusionDetection": lib.prop(r, ["intrusionDetection"], null)}) if {
	some r in input.resources
	nw.is_ci(lib.prop(r, ["sku", "tier"], ""), "Premium")
	nw.lower_str(lib.prop(r, ["intrusionDetection", "mode"], "Off")) in {"off", ""}
}

indeterminate contains lib.undecided(r, "the firewall policy document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
