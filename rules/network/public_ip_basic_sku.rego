# Basic SKU public IP addresses. Unlike Standard, a Basic public IP is open to inbound
# traffic unless an NSG denies it (Standard is "secure by default"), has no zone
# redundancy and no DDoS IP Protection, and was retired on 30 September 2025. ARM always
# returns `sku`; when it is missing the rule reports indeterminate rather than guessing
# (the default SKU changed over API versions).
package scanledger.rules.network.public_ip_basic_sku

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-017",
	"title": "Public IP address uses the retired Basic SKU",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/publicIPAddresses"],
	"frameworks": {
		# CIS v2.1.0 5.5: "Ensure that SKU Basic/Consumption is not used on artifacts that need to be monitored".
		"cis_azure": ["5.5"],
		"cis_v3": ["6.5"],
		"nist_csf": ["PR.AC-5", "PR.IP-1"],
		"iso27001": ["A.8.20", "A.8.9"],
	},
	"description": "The public IP address uses the Basic SKU: it accepts inbound traffic unless a network security group blocks it, lacks availability zones and DDoS IP Protection, and is retired (no longer supported since 30 September 2025). Standard SKU addresses deny inbound traffic by default.",
	"remediation": {
		"portal": "Public IP address > Configuration > Upgrade to Standard SKU (dissociate it first if required) and make sure an NSG allows only the intended traffic.",
		"cli": "az network public-ip update --resource-group <rg> --name <public-ip> --sku Standard",
	},
}

deny contains lib.finding(r, "", {"sku": r.sku.name}) if {
	some r in input.resources
	is_string(r.sku.name)
	nw.is_ci(r.sku.name, "Basic")
}

indeterminate contains lib.undecided(r, "the public IP address document has no sku.name") if {
	some r in input.resources
	not is_string(object.get(object.get(r, "sku", {}), "name", null))
}
