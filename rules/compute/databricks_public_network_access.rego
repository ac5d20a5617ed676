# Databricks workspace whose front end (web UI and REST API) is reachable from public
# networks: `publicNetworkAccess` not Disabled (absent means Enabled). Prowler
# databricks_workspace_public_network_access_disabled. Low: users still authenticate with
# Entra ID; IP access lists may restrict it further (not visible in ARM).
package scanledger.rules.compute.databricks_public_network_access

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-DBW-003",
	"title": "Databricks workspace public network access is enabled",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Databricks/workspaces"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Public network access to the workspace is enabled, so its web application and REST API are reachable from the internet rather than only through private endpoints. Reads Microsoft.Databricks/workspaces 2024-05-01 `properties.publicNetworkAccess`.",
	"remediation": {
		"portal": "Azure Databricks workspace > Settings > Networking > Allow Public Network Access: Disabled (after front-end private endpoints exist) > Save.",
		"cli": "az databricks workspace update --resource-group <rg> --name <workspace> --public-network-access Disabled",
	},
}

deny contains lib.finding(r, "", {"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], "(not set: Enabled)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.eq_ci(lib.prop(r, ["publicNetworkAccess"], "Enabled"), "Disabled")
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
