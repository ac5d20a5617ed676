# Local Kubernetes accounts are enabled: disableLocalAccounts is not true. Its documented
# default is false, so absent fires. With local accounts, `az aks get-credentials --admin`
# (ARM action listClusterAdminCredential) yields a static cluster-admin certificate that
# bypasses Entra ID, Conditional Access and per-user audit.
package scanledger.rules.aks.local_accounts_enabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-003",
	"title": "AKS cluster allows local (non-Entra) accounts",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.16", "A.8.5"],
	},
	"description": "Local accounts are enabled, so anyone allowed to list the cluster's admin credentials gets a static cluster-admin certificate that bypasses Entra ID, Conditional Access and MFA and cannot be tied to a person in audit logs.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Security configuration > Authentication and Authorization: Microsoft Entra ID authentication with Kubernetes RBAC (or Azure RBAC), and untick Kubernetes local accounts > Apply.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --disable-local-accounts",
	},
}

deny contains lib.finding(r, "", {"disableLocalAccounts": lib.prop(r, ["disableLocalAccounts"], null)}) if {
	some r in input.resources
	not lib.is_true(lib.prop(r, ["disableLocalAccounts"], false))
}
