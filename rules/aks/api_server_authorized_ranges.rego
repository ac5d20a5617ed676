# The AKS API server is public but restricted to authorized IP ranges. Decision: this is a
# finding, but a low one. Authorized ranges satisfy "restrict access to the control plane";
# the endpoint, its TLS stack and the API server itself remain exposed to those ranges
# (often shared NAT or cloud egress addresses) and the ranges drift. A private cluster (or
# public network access disabled) passes. Unrestricted public API servers are AZ-AKS-001.
package scanledger.rules.aks.api_server_authorized_ranges

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-002",
	"title": "AKS API server is public, limited to authorized IP ranges",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The cluster's API server has a public endpoint restricted by authorized IP ranges. This is much better than an open endpoint, but the API server is still reachable from every address in those ranges (typically shared office or CI egress addresses); a private cluster removes the public endpoint entirely.",
	"remediation": {
		"portal": "Review Kubernetes service > Settings > Networking > authorized IP ranges; to remove the public endpoint, enable API Server VNet integration with private access or redeploy as a private cluster.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --enable-apiserver-vnet-integration --apiserver-subnet-id <subnet-id> --enable-private-cluster",
	},
}

deny contains lib.finding(r, "", {"authorizedIPRanges": platform.aks_ranges(r)}) if {
	some r in input.resources
	platform.aks_public_restricted(r)
}
