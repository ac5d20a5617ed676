# The vault firewall denies by default but an IP rule admits an internet-wide range
# (0.0.0.0/0, or a public IPv4 range of /8 or wider such as 0.0.0.0/1). Not flagged when
# public network access is Disabled (IP rules do not apply) or when the default action is
# Allow (AZ-KV-004 reports that).
package scanledger.rules.keyvault.firewall_broad_ip_rule

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-KV-007",
	"title": "Key vault firewall IP rule admits an internet-wide address range",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The vault firewall denies by default, but one of its IP rules allows a range covering a large part of the internet (/8 or wider), so the vault is in effect reachable from almost anywhere while appearing restricted.",
	"remediation": {
		"portal": "Key vault > Settings > Networking > Firewalls and virtual networks > remove the broad address range and list only the organisation's egress addresses > Apply.",
		"cli": "az keyvault network-rule remove --name <vault> --resource-group <rg> --ip-address <range>",
	},
}

deny contains lib.finding(r, value, {"ipRule": value, "prefixLength": slib.prefix_length(value)}) if {
	some r in input.resources
	slib.lc(lib.prop(r, ["publicNetworkAccess"], null)) != "disabled"
	slib.default_action(r) == "deny"
	some rule in slib.arr(lib.prop(r, ["networkAcls", "ipRules"], []))
	value := object.get(rule, "value", "")
	slib.internet_wide(value)
}
