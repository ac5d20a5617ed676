# The Defender for Containers sensor is not enabled on the cluster:
# securityProfile.defender.securityMonitoring.enabled is not true (absent = not deployed).
package scanledger.rules.aks.defender_profile_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-011",
	"title": "AKS cluster has the Defender for Containers sensor disabled",
	"severity": "medium",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["DE.CM-4", "DE.CM-7"],
		"iso27001": ["A.8.7", "A.8.16"],
	},
	"description": "The Defender security profile is off, so no Defender sensor runs on the nodes and runtime threats in the cluster (crypto-miners, reverse shells, container escapes) are not detected even when the Defender for Containers plan is on.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Containers plan > Settings > Defender sensor: On (or enable it on the cluster with the CLI).",
		"cli": "az aks update --resource-group <rg> --name <cluster> --enable-defender",
	},
}

deny contains lib.finding(r, "", {"securityMonitoring.enabled": v}) if {
	some r in input.resources
	v := lib.prop(r, ["securityProfile", "defender", "securityMonitoring", "enabled"], null)
	not lib.is_true(v)
}
