# No automatic Kubernetes version upgrade: autoUpgradeProfile.upgradeChannel is "none" or
# absent (the documented default is "none"). Any of rapid, stable, patch and node-image
# passes. Low: many teams upgrade deliberately through their own pipeline.
package scanledger.rules.aks.cluster_auto_upgrade_none

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-012",
	"title": "AKS cluster has no automatic upgrade channel",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.IP-12"],
		"iso27001": ["A.8.8"],
	},
	"description": "The cluster's auto-upgrade channel is none, so Kubernetes patch releases (including security fixes) are applied only when someone upgrades manually, and the cluster can drift out of the supported version window.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Cluster configuration > Upgrade > Automatic upgrade: Enabled with patch (or stable) > Save.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --auto-upgrade-channel patch",
	},
}

deny contains lib.finding(r, "", {"upgradeChannel": channel}) if {
	some r in input.resources
	channel := lib.prop(r, ["autoUpgradeProfile", "upgradeChannel"], null)
	no_channel(channel)
}

no_channel(c) if c == null

no_channel(c) if platform.str_in(c, {"", "none"})
