# Key vault without an approved private endpoint (CIS v2.1.0 8.7 / v3.0.0 3.3.7 "Ensure that
# Private Endpoints are Used for Azure Key Vault"). Reads the vault's
# `properties.privateEndpointConnections` (Microsoft.KeyVault/vaults 2023-07-01): ARM lists
# the connections there and omits the property when there are none, so absent fires. A
# connection still Pending, Rejected or Disconnected carries no traffic and does not count.
# Low: the vault firewall (AZ-KV-004, AZ-KV-007) may restrict the public endpoint well;
# a private endpoint keeps secrets traffic off it altogether.
package scanledger.rules.keyvault.private_endpoint_missing

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-009",
	"title": "Key vault has no private endpoint",
	"severity": "low",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"cis_azure": ["8.7"],
		"cis_v3": ["3.3.7"],
		"nist_csf": ["PR.AC-5", "PR.DS-2"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "No approved private endpoint connects to the vault, so applications reach it over its public endpoint. A private endpoint gives the vault an address inside the virtual network and, with public network access disabled, keeps key and secret operations off the internet. Reads Microsoft.KeyVault/vaults 2023-07-01 `properties.privateEndpointConnections[].properties.privateLinkServiceConnectionState.status`.",
	"remediation": {
		"portal": "Key vault > Settings > Networking > Private endpoint connections > + Create (target sub-resource: vault), then set Public network access to Disabled once clients use it.",
		"cli": "az network private-endpoint create --resource-group <rg> --name <pe> --vnet-name <vnet> --subnet <subnet> --private-connection-resource-id <vault-id> --group-id vault --connection-name <name>",
	},
}

deny contains lib.finding(r, "", {
	"privateEndpointConnections": count(lib.arr(lib.prop(r, ["privateEndpointConnections"], []))),
	"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
}) if {
	some r in input.resources
	not lib.no_properties(r)
	count(lib.approved_private_endpoints(r)) == 0
}

indeterminate contains lib.undecided(r, "the vault document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
