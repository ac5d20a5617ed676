# No network policy engine: networkProfile.networkPolicy is absent, empty or "none". The API
# documents "none" as the value when the property is not specified, so absent fires.
# Azure, Calico and Cilium all enforce Kubernetes NetworkPolicy objects and pass.
package scanledger.rules.aks.network_policy_missing

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-009",
	"title": "AKS cluster has no network policy engine",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.22"],
	},
	"description": "The cluster has no network policy engine, so Kubernetes NetworkPolicy objects are ignored and every pod can reach every other pod and namespace: a single compromised workload can move laterally across the cluster.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Networking > Network policy: Azure, Calico or Cilium (set at creation, or updated with the CLI).",
		"cli": "az aks update --resource-group <rg> --name <cluster> --network-policy azure",
	},
}

deny contains lib.finding(r, "", {"networkPolicy": policy, "networkPlugin": lib.prop(r, ["networkProfile", "networkPlugin"], null)}) if {
	some r in input.resources
	policy := lib.prop(r, ["networkProfile", "networkPolicy"], null)
	no_policy(policy)
}

no_policy(p) if p == null

no_policy(p) if platform.str_in(p, {"", "none"})
