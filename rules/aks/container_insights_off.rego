# AKS cluster without Container insights: the monitoring add-on (addonProfiles key
# `omsagent`, spelled `omsAgent` by some API versions) is absent or not enabled. Managed
# Prometheus (azureMonitorProfile.metrics) collects metrics only and does not count.
# Prowler aks_cluster_azure_monitor_enabled.
package scanledger.rules.aks.container_insights_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-014",
	"title": "AKS cluster does not send container logs to Azure Monitor",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "PR.PT-1"],
		"iso27001": ["A.8.15", "A.8.16"],
	},
	"description": "Container insights is not enabled, so container logs, Kubernetes events and node health are not collected in a Log Analytics workspace for alerting and investigation. Reads Microsoft.ContainerService/managedClusters 2024-09-01 `properties.addonProfiles.omsagent.enabled`.",
	"remediation": {
		"portal": "AKS cluster > Monitoring > Insights > Configure monitoring > enable Container logs with a Log Analytics workspace > Configure.",
		"cli": "az aks enable-addons --resource-group <rg> --name <cluster> --addons monitoring --workspace-resource-id <workspace-id>",
	},
}

profiles(r) := platform.values_ci(lib.prop(r, ["addonProfiles"], {}), "omsagent")

enabled(r) if {
	some p in profiles(r)
	lib.is_true(object.get(platform.obj(p), "enabled", false))
}

deny contains lib.finding(r, "", {"omsagent": profiles(r)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not enabled(r)
}

indeterminate contains lib.undecided(r, "the cluster document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
