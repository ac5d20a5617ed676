# The node OS upgrade channel is None or Unmanaged (autoUpgradeProfile.nodeOSUpgradeChannel).
# None: no OS security updates are applied by AKS. Unmanaged: Linux nodes apply OS updates
# through unattended-upgrades but node images are never refreshed (Windows nodes get nothing)
# — both leave nodes unpatched. Absent: the API documents NodeImage as the default (current
# API versions return the effective value), so absent does not fire.
package scanledger.rules.aks.node_os_upgrade_channel

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-007",
	"title": "AKS node OS security updates are not managed",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.IP-12", "ID.RA-1"],
		"iso27001": ["A.8.8"],
	},
	"description": "The node OS upgrade channel is None or Unmanaged, so AKS does not roll out patched node images or security updates and nodes keep known OS vulnerabilities until someone upgrades node pools by hand.",
	"remediation": {
		"portal": "Kubernetes service > Settings > Cluster configuration > Upgrade > Node security channel type: Node Image (or Security Patch) > Save.",
		"cli": "az aks update --resource-group <rg> --name <cluster> --node-os-upgrade-channel NodeImage",
	},
}

deny contains lib.finding(r, "", {"nodeOSUpgradeChannel": channel}) if {
	some r in input.resources
	channel := lib.prop(r, ["autoUpgradeProfile", "nodeOSUpgradeChannel"], null)
	platform.str_in(channel, {"none", "unmanaged"})
}
