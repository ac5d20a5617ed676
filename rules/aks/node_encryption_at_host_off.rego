# AKS node pool without encryption at host: agentPoolProfiles[] `enableEncryptionAtHost`
# not true (absent means false). One finding per pool. Checkov CKV_AZURE_227. Without it
# the node VMs' temporary disks and OS/data disk caches are not encrypted.
package scanledger.rules.aks.node_encryption_at_host_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-015",
	"title": "AKS node pool does not encrypt at host",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "Encryption at host is off for the pool, so the nodes' temporary disks, ephemeral OS disks and disk caches (which can hold container images, logs and secrets written to emptyDir) are not encrypted at rest. Reads Microsoft.ContainerService/managedClusters 2024-09-01 `properties.agentPoolProfiles[].enableEncryptionAtHost`.",
	"remediation": {
		"portal": "Encryption at host is set when a pool is created: AKS cluster > Settings > Node pools > Add node pool > Enable encryption at host, move the workloads, delete the old pool (the subscription needs the EncryptionAtHost feature).",
		"cli": "az aks nodepool add --resource-group <rg> --cluster-name <cluster> --name <newpool> --enable-encryption-at-host",
	},
}

pools(r) := [p | some p in lib.arr(lib.prop(r, ["agentPoolProfiles"], [])); is_object(p)]

deny contains lib.finding(r, p.name, {"pool": p.name, "enableEncryptionAtHost": object.get(p, "enableEncryptionAtHost", null)}) if {
	some r in input.resources
	some p in pools(r)
	not lib.is_true(object.get(p, "enableEncryptionAtHost", false))
}

indeterminate contains lib.undecided(r, "the cluster document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
