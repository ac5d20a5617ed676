# Storage account without an approved private endpoint (CIS v2.1.0 3.10 / v3.0.0 4.9
# "Private Endpoints are used to access Storage Accounts"). ARM lists the connections in
# `privateEndpointConnections` (absent or empty: none). Pending, Rejected or
# Disconnected connections carry no traffic. Low: the firewall may already restrict the
# public endpoint (AZ-STG-005, AZ-STG-016).
package scanledger.rules.storage.private_endpoint_missing

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-022",
	"title": "Storage account has no private endpoint",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.10"],
		"cis_v3": ["4.9"],
		"nist_csf": ["PR.AC-5", "PR.DS-2"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "No approved private endpoint connects to the account, so clients in virtual networks reach it over its public endpoint. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.privateEndpointConnections[].properties.privateLinkServiceConnectionState.status`.",
	"remediation": {
		"portal": "Storage account > Security + networking > Networking > Private endpoint connections > + Private endpoint (target sub-resource blob, file, queue, table or dfs as used).",
		"cli": "az network private-endpoint create --resource-group <rg> --name <pe> --vnet-name <vnet> --subnet <subnet> --private-connection-resource-id <account-id> --group-id blob --connection-name <name>",
	},
}

deny contains lib.finding(r, "", {"privateEndpointConnections": count(slib.arr(lib.prop(r, ["privateEndpointConnections"], [])))}) if {
	some r in input.resources
	not lib.no_properties(r)
	count(lib.approved_private_endpoints(r)) == 0
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
