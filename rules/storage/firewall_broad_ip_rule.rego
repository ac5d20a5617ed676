# The storage firewall is on (default action Deny) but an IP rule admits an internet-wide
# range (0.0.0.0/0, or a public IPv4 range of /8 or wider such as 0.0.0.0/1), which undoes
# it. Not flagged when public network access is Disabled / SecuredByPerimeter (IP rules do
# not apply) or when the default action is Allow (AZ-STG-005 reports that).
package scanledger.rules.storage.firewall_broad_ip_rule

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-016",
	"title": "Storage firewall IP rule admits an internet-wide address range",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The firewall denies by default, but one of its IP rules allows a range covering a large part of the internet (/8 or wider), so the account is in effect reachable from almost anywhere while appearing restricted.",
	"remediation": {
		"portal": "Storage account > Security + networking > Networking > Firewall > remove the broad address range and list only the organisation's egress addresses > Save.",
		"cli": "az storage account network-rule remove --account-name <account> --resource-group <rg> --ip-address <range>",
	},
}

deny contains lib.finding(r, value, {"ipRule": value, "prefixLength": slib.prefix_length(value)}) if {
	some r in input.resources
	not slib.public_network_off(r)
	slib.default_action(r) == "deny"
	some rule in slib.arr(lib.prop(r, ["networkAcls", "ipRules"], []))
	slib.lc(object.get(rule, "action", "Allow")) in {"allow", ""}
	value := object.get(rule, "value", "")
	slib.internet_wide(value)
}
