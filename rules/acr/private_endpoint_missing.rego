# Container registry without an approved private endpoint: `privateEndpointConnections`
# absent, empty or none Approved. Prowler containerregistry_uses_private_link. Private
# link needs the Premium tier, so for Basic and Standard registries the remediation is an
# upgrade. Low: AZ-ACR-002 reports a registry open to the whole internet.
package scanledger.rules.acr.private_endpoint_missing

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-ACR-007",
	"title": "Container registry has no private endpoint",
	"severity": "low",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.AC-5", "PR.DS-2"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "No approved private endpoint connects to the registry, so clusters and build agents pull and push images over its public endpoint. Reads Microsoft.ContainerRegistry/registries 2023-07-01 `properties.privateEndpointConnections[].properties.privateLinkServiceConnectionState.status`.",
	"remediation": {
		"portal": "Container registry > Settings > Networking > Private access > + Create a private endpoint connection (Premium tier; upgrade under Properties first if needed).",
		"cli": "az network private-endpoint create --resource-group <rg> --name <pe> --vnet-name <vnet> --subnet <subnet> --private-connection-resource-id <registry-id> --group-id registry --connection-name <name>",
	},
}

deny contains lib.finding(r, "", {"sku": object.get(r, ["sku", "name"], null), "privateEndpointConnections": count(lib.arr(lib.prop(r, ["privateEndpointConnections"], [])))}) if {
	some r in input.resources
	not lib.no_properties(r)
	count(lib.approved_private_endpoints(r)) == 0
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
