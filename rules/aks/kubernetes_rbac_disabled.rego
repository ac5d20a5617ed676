# Kubernetes RBAC is disabled (enableRBAC false). Its default is true and it cannot be
# turned off after creation, so only an explicit false fires.
package scanledger.rules.aks.kubernetes_rbac_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-008",
	"title": "AKS cluster has Kubernetes RBAC disabled",
	"severity": "high",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.8.2"],
	},
	"description": "Kubernetes RBAC is off, so every authenticated identity (users and every pod's service account) has unrestricted access to the Kubernetes API: one compromised pod can read all secrets and take over the cluster.",
	"remediation": {
		"portal": "RBAC cannot be enabled on an existing cluster: create a new cluster with Kubernetes RBAC (and Microsoft Entra ID integration) and migrate the workloads.",
		"cli": "az aks create --resource-group <rg> --name <new-cluster> --enable-aad --enable-azure-rbac --disable-local-accounts",
	},
}

deny contains lib.finding(r, "", {"enableRBAC": v}) if {
	some r in input.resources
	v := lib.prop(r, ["enableRBAC"], true)
	lib.is_false(v)
}
