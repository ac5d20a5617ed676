# AKS cluster without a disk encryption set: no `diskEncryptionSetID`, so node OS and data
# disks use platform-managed keys. Checkov CKV_AZURE_117. Low: disks are encrypted either
# way; a customer-managed key adds control over and revocation of the key.
package scanledger.rules.aks.disk_encryption_set_missing

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-017",
	"title": "AKS node disks are not encrypted with a customer-managed key",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The cluster's node disks are encrypted with platform-managed keys (no disk encryption set), so the organisation cannot rotate, audit or revoke the key. Reads Microsoft.ContainerService/managedClusters 2024-09-01 `properties.diskEncryptionSetID`.",
	"remediation": {
		"portal": "The disk encryption set is chosen when the cluster is created: create a cluster with Encryption type: customer-managed key and the disk encryption set, and move the workloads.",
		"cli": "az aks create --resource-group <rg> --name <new-cluster> --node-osdisk-diskencryptionset-id <des-id>",
	},
}

deny contains lib.finding(r, "", {"diskEncryptionSetID": lib.prop(r, ["diskEncryptionSetID"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not nonempty(lib.prop(r, ["diskEncryptionSetID"], ""))
}

nonempty(x) if {
	is_string(x)
	trim_space(x) != ""
}

indeterminate contains lib.undecided(r, "the cluster document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
