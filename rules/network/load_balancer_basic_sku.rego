# Basic SKU load balancers: no SLA, no availability zones, open backends without NSG
# requirements, and retired on 30 September 2025. ARM always returns `sku`; a missing
# one is reported as indeterminate (the default SKU changed over API versions).
package scanledger.rules.network.load_balancer_basic_sku

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-025",
	"title": "Load balancer uses the retired Basic SKU",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/loadBalancers"],
	"frameworks": {
		# CIS v2.1.0 5.5: "Ensure that SKU Basic/Consumption is not used on artifacts that need to be monitored".
		"cis_azure": ["5.5"],
		"cis_v3": ["6.5"],
		"nist_csf": ["PR.IP-1"],
		"iso27001": ["A.8.9"],
	},
	"description": "The load balancer uses the Basic SKU, retired on 30 September 2025: no SLA, no availability zones, limited diagnostics, and backends that do not require an NSG (Standard load balancers are closed to inbound traffic unless an NSG allows it).",
	"remediation": {
		"portal": "Load balancer > Overview > Upgrade to Standard (or use the Basic-to-Standard upgrade script) and add NSGs that allow only the balanced ports.",
		"cli": "az network lb create --resource-group <rg> --name <lb> --sku Standard",
	},
}

deny contains lib.finding(r, "", {"sku": r.sku.name}) if {
	some r in input.resources
	nw.is_ci(r.sku.name, "Basic")
}

indeterminate contains lib.undecided(r, "the load balancer document has no sku.name") if {
	some r in input.resources
	not is_string(object.get(object.get(r, "sku", {}), "name", null))
}
