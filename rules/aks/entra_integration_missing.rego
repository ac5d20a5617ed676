# No Microsoft Entra ID integration: aadProfile is absent, null or empty. Both the managed
# integration ({"managed": true, ...}) and the legacy one (serverAppID/clientAppID) pass.
package scanledger.rules.aks.entra_integration_missing

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-010",
	"title": "AKS cluster is not integrated with Microsoft Entra ID",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.16", "A.8.5"],
	},
	"description": "The cluster does not authenticate users with Microsoft Entra ID, so access relies on certificates in kubeconfig files that cannot be revoked per user and are not subject to MFA or Conditional Access.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Security configuration > Authentication and Authorization: Microsoft Entra ID authentication with Kubernetes RBAC or Azure RBAC > Apply.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --enable-aad --aad-admin-group-object-ids <admin-group-id>",
	},
}

deny contains lib.finding(r, "", {"aadProfile": lib.prop(r, ["aadProfile"], null)}) if {
	some r in input.resources
	platform.blank(lib.prop(r, ["aadProfile"], null))
}
