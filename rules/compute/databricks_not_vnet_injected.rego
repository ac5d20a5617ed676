# Databricks workspace not VNet-injected: parameters `customVirtualNetworkId.value` empty or
# absent, so clusters run in a Databricks-managed virtual network the organisation cannot
# attach NSGs, firewalls, private endpoints or peering to. Prowler
# databricks_workspace_vnet_injection_enabled.
package scanledger.rules.compute.databricks_not_vnet_injected

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-DBW-002",
	"title": "Databricks workspace is not deployed in your virtual network",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Databricks/workspaces"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The workspace is not deployed in a customer-managed virtual network, so cluster traffic cannot be filtered by your NSGs and firewall or reach data sources through private endpoints. Reads Microsoft.Databricks/workspaces 2024-05-01 `properties.parameters.customVirtualNetworkId.value`.",
	"remediation": {
		"portal": "VNet injection is chosen at creation: create a workspace with Networking > Deploy Azure Databricks workspace in your own Virtual Network, and migrate.",
		"cli": "az databricks workspace create --resource-group <rg> --name <new-workspace> --location <region> --sku premium --vnet <vnet-id> --public-subnet <host-subnet> --private-subnet <container-subnet>",
	},
}

deny contains lib.finding(r, "", {"customVirtualNetworkId": lib.prop(r, ["parameters", "customVirtualNetworkId", "value"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	v := lib.prop(r, ["parameters", "customVirtualNetworkId", "value"], "")
	not injected(v)
}

injected(v) if {
	is_string(v)
	trim_space(v) != ""
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
