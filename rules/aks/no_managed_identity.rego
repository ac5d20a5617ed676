# The cluster does not use a managed identity for its control plane: identity.type is not
# SystemAssigned or UserAssigned (compared case-insensitively; the older scanner compared the
# SDK enum's str() and fired on every cluster). A cluster whose servicePrincipalProfile
# clientId is "msi" also uses a managed identity and passes.
package scanledger.rules.aks.no_managed_identity

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-004",
	"title": "AKS cluster uses a service principal instead of a managed identity",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17", "A.8.5"],
	},
	"description": "The cluster authenticates to Azure with a service principal and client secret, a long-lived credential stored on the nodes that must be rotated by hand and expires (breaking the cluster) when forgotten.",
	"remediation": {
		"portal": "Not available in the portal; use the CLI to move the cluster to a managed identity.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --enable-managed-identity",
	},
}

managed_types := {"systemassigned", "userassigned", "systemassigned, userassigned", "systemassigned,userassigned"}

managed_identity(r) if platform.str_in(object.get(platform.obj(object.get(r, "identity", {})), "type", null), managed_types)

managed_identity(r) if platform.str_eq(lib.prop(r, ["servicePrincipalProfile", "clientId"], null), "msi")

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not managed_identity(r)
	details := {
		"identity.type": object.get(platform.obj(object.get(r, "identity", {})), "type", null),
		"servicePrincipalProfile.clientId": lib.prop(r, ["servicePrincipalProfile", "clientId"], null),
	}
}
