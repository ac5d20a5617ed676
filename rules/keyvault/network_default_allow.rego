# The vault's endpoint accepts connections from any network: publicNetworkAccess is not
# Disabled (absent = Enabled) and networkAcls.defaultAction is Allow (absent networkAcls =
# Allow). Private endpoint connections do not close the public endpoint, so they do not
# make the vault pass; they are listed in the details.
package scanledger.rules.keyvault.network_default_allow

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-KV-004",
	"title": "Key vault accepts connections from all networks",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Public network access is enabled and the vault firewall's default action is Allow, so the vault's data-plane endpoint is reachable from any internet address; a leaked token or client secret can be used from anywhere.",
	"remediation": {
		"portal": "Key vault > Settings > Networking > Firewalls and virtual networks: Allow public access from specific virtual networks and IP addresses (or Disable public access and use a private endpoint) > Apply.",
		"cli": "az keyvault update --name <vault> --resource-group <rg> --default-action Deny",
	},
}

approved_private_endpoints(r) := [n |
	some c in slib.arr(lib.prop(r, ["privateEndpointConnections"], []))
	slib.lc(object.get(c, ["properties", "privateLinkServiceConnectionState", "status"], "")) == "approved"
	n := object.get(c, "id", "")
]

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	slib.lc(lib.prop(r, ["publicNetworkAccess"], null)) != "disabled"
	slib.default_action(r) == "allow"
	details := {
		"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
		"defaultAction": lib.prop(r, ["networkAcls", "defaultAction"], null),
		"approvedPrivateEndpoints": count(approved_private_endpoints(r)),
	}
}
