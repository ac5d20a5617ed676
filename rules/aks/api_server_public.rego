# The AKS API server is public and accepts connections from any address: not a private
# cluster, public network access not disabled, and no authorized IP ranges (or a range such
# as 0.0.0.0/0 that admits everyone). A public API server restricted to authorized ranges is
# the lesser finding AZ-AKS-002; the two never fire together. ARM's default is a public API
# server without ranges, so absent apiServerAccessProfile fires.
package scanledger.rules.aks.api_server_public

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-001",
	"title": "AKS API server is reachable from the whole internet",
	"severity": "high",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-5", "PR.PT-4"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The cluster's Kubernetes API server has a public endpoint open to every internet address, exposing it to credential stuffing, exploitation of API-server vulnerabilities and abuse of any leaked kubeconfig or token.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Networking > Public access > Set authorized IP ranges to your admin networks (or redeploy as a private cluster / enable API Server VNet integration with a private endpoint).",
		"cli": "az aks update --resource-group <rg> --name <cluster> --api-server-authorized-ip-ranges <admin-cidr>[,<admin-cidr>...]",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	platform.aks_public_unrestricted(r)
	details := {
		"enablePrivateCluster": lib.prop(r, ["apiServerAccessProfile", "enablePrivateCluster"], null),
		"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
		"authorizedIPRanges": platform.aks_ranges(r),
		"open_ranges": platform.aks_open_ranges(r),
	}
}
