# Databricks workspace without secure cluster connectivity (no public IP): parameters
# `enableNoPublicIp.value` not true. Cluster nodes then get public IPs and open inbound
# ports for the control plane. New workspaces default to true since 2024; older ones
# and explicit false fire. Prowler databricks_workspace_no_public_ip_enabled.
package scanledger.rules.compute.databricks_public_ip_nodes

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-DBW-001",
	"title": "Databricks workspace cluster nodes have public IP addresses",
	"severity": "medium",
	"category": "compute",
	"resource_types": ["Microsoft.Databricks/workspaces"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Secure cluster connectivity is off, so the workspace's cluster nodes get public IP addresses and accept inbound connections from the Databricks control plane over the internet. Reads Microsoft.Databricks/workspaces 2024-05-01 `properties.parameters.enableNoPublicIp.value`.",
	"remediation": {
		"portal": "Azure Databricks workspace > Settings > Networking > Deploy Azure Databricks workspace with Secure Cluster Connectivity (No Public IP): Yes > Save (the workspace must be VNet-injected or will be migrated).",
		"cli": "az databricks workspace update --resource-group <rg> --name <workspace> --enable-no-public-ip true",
	},
}

deny contains lib.finding(r, "", {"enableNoPublicIp": lib.prop(r, ["parameters", "enableNoPublicIp", "value"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.is_true(lib.prop(r, ["parameters", "enableNoPublicIp", "value"], false))
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
