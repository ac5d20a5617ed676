# A Log Analytics workspace accepts shared-key (workspace key) authentication for ingestion
# and the legacy query API: properties.features.disableLocalAuth is not true. The documented
# default is false, so absent fires.
package scanledger.rules.monitoring.log_analytics_local_auth

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-MON-005",
	"title": "Log Analytics workspace accepts shared-key authentication",
	"severity": "low",
	"category": "monitoring",
	"resource_types": ["Microsoft.OperationalInsights/workspaces"],
	"frameworks": {
		"nist_csf": ["PR.AC-7", "PR.DS-6"],
		"iso27001": ["A.8.5"],
	},
	"description": "Local authentication is enabled, so anyone with a workspace key (a long-lived shared secret held by legacy agents and scripts) can write forged log records into the workspace, undermining detections built on it.",
	"remediation": {
		"portal": "Move every agent to the Azure Monitor Agent (Entra ID authentication), then set the workspace's features.disableLocalAuth to true (ARM template, Bicep or the CLI below).",
		"cli": "az resource update --ids <workspace-resource-id> --set properties.features.disableLocalAuth=true",
	},
}

deny contains lib.finding(r, "", {"features.disableLocalAuth": v}) if {
	some r in input.resources
	v := lib.prop(r, ["features", "disableLocalAuth"], null)
	not lib.is_true(v)
}
