# Microsoft Entra Workload ID is not enabled: securityProfile.workloadIdentity.enabled is not
# true (it requires the OIDC issuer, oidcIssuerProfile.enabled). Both default to off. Without
# it, pods that call Azure use node-wide managed identities or secrets in the cluster.
package scanledger.rules.aks.workload_identity_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-005",
	"title": "AKS cluster has Workload Identity disabled",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-4"],
		"iso27001": ["A.5.17", "A.8.2"],
	},
	"description": "Workload Identity (and its OIDC issuer) is off, so workloads that need Azure access must rely on the node's kubelet identity, shared across all pods on the node, or on client secrets stored in Kubernetes secrets.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Security configuration > Enable OIDC issuer and Workload Identity > Save.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --enable-oidc-issuer --enable-workload-identity",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not lib.is_true(lib.prop(r, ["securityProfile", "workloadIdentity", "enabled"], false))
	details := {
		"securityProfile.workloadIdentity.enabled": lib.prop(r, ["securityProfile", "workloadIdentity", "enabled"], null),
		"oidcIssuerProfile.enabled": lib.prop(r, ["oidcIssuerProfile", "enabled"], null),
	}
}
