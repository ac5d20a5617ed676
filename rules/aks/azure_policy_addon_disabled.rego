# The Azure Policy add-on is not enabled. The add-on's key in addonProfiles is spelled
# `azurepolicy` or `azurePolicy` depending on API version and tooling: matched ignoring case.
# Not installed (no key) = off.
package scanledger.rules.aks.azure_policy_addon_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-006",
	"title": "AKS cluster has the Azure Policy add-on disabled",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.IP-1", "DE.CM-7"],
		"iso27001": ["A.8.9"],
	},
	"description": "Without the Azure Policy add-on (Gatekeeper), Azure Policy cannot audit or block insecure workloads such as privileged containers, host-path mounts or images from untrusted registries, and Defender for Cloud's Kubernetes recommendations cannot be enforced.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Policies > Enable add-on.",
		"cli": "az aks enable-addons --resource-group <rg> --name <cluster> --addons azure-policy",
	},
}

addon_profiles(r) := platform.values_ci(lib.prop(r, ["addonProfiles"], {}), "azurepolicy")

enabled(r) if {
	some profile in addon_profiles(r)
	lib.is_true(object.get(platform.obj(profile), "enabled", false))
}

deny contains lib.finding(r, "", {"azurepolicy": profiles}) if {
	some r in input.resources
	not enabled(r)
	profiles := addon_profiles(r)
}
