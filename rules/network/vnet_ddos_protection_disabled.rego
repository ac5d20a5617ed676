# Virtual networks without Azure DDoS Network Protection. `enableDdosProtection` defaults
# to false (REST reference: "Indicates if DDoS protection is enabled for all the protected
# resources in the virtual network. It requires a DDoS protection plan"), so absent fires.
# Low: the plan is costly and Azure's infrastructure (DDoS) protection is always on; per-IP
# "DDoS IP Protection" on public IPs is an alternative this rule cannot see.
package scanledger.rules.network.vnet_ddos_protection_disabled

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-011",
	"title": "Virtual network has no DDoS Network Protection",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/virtualNetworks"],
	"frameworks": {
		"nist_csf": ["PR.DS-4"],
		"iso27001": ["A.8.20", "A.8.14"],
	},
	"description": "DDoS Network Protection is not enabled on the virtual network, so its public endpoints rely on the basic platform protection only: no adaptive tuning, attack telemetry, rapid response or cost protection. Consider it for networks hosting internet-facing workloads, or DDoS IP Protection on their public IPs.",
	"remediation": {
		"portal": "Virtual network > DDoS protection > Enable > select a DDoS protection plan > Save.",
		"cli": "az network vnet update --resource-group <rg> --name <vnet> --ddos-protection true --ddos-protection-plan <plan-id>",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	v := lib.prop(r, ["enableDdosProtection"], false)
	not lib.is_true(v)
	details := {
		"enableDdosProtection": v,
		"ddosProtectionPlan": nw.ref_id(lib.prop(r, ["ddosProtectionPlan"], null)),
	}
}
