# AKS node pool whose nodes each get a public IP address: agentPoolProfiles[]
# `enableNodePublicIP` true (absent means false). One finding per pool (sub_item the pool
# name). Prowler aks_clusters_created_with_private_nodes.
package scanledger.rules.aks.node_public_ip

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-013",
	"title": "AKS node pool gives its nodes public IP addresses",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Nodes of the pool have their own public IP addresses, so they are reachable from the internet directly (subject only to the node subnet's NSG) instead of through the cluster's load balancers and egress. Reads Microsoft.ContainerService/managedClusters 2024-09-01 `properties.agentPoolProfiles[].enableNodePublicIP`.",
	"remediation": {
		"portal": "Node public IPs cannot be turned off on an existing pool: AKS cluster > Settings > Node pools > Add node pool without Enable public IP per node, move the workloads, delete the old pool.",
		"cli": "az aks nodepool add --resource-group <rg> --cluster-name <cluster> --name <newpool> --mode User",
	},
}

pools(r) := [p | some p in lib.arr(lib.prop(r, ["agentPoolProfiles"], [])); is_object(p)]

deny contains lib.finding(r, p.name, {"pool": p.name, "enableNodePublicIP": true, "nodePublicIPPrefixID": object.get(p, "nodePublicIPPrefixID", null)}) if {
	some r in input.resources
	some p in pools(r)
	lib.is_true(object.get(p, "enableNodePublicIP", false))
}

indeterminate contains lib.undecided(r, "the cluster document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
