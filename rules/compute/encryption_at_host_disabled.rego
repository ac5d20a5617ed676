# Encryption at host off. Managed disks are always encrypted at rest in storage
# (platform-managed keys, at least), so this rule is NOT about disk encryption at rest: it
# flags that the VM's temporary disk and its OS/data disk caches, which live on the host,
# are not encrypted and that data does not flow encrypted from host to storage.
# securityProfile.encryptionAtHost defaults to false (absent = off). Not flagged:
# confidential VMs (their own memory and disk protection), and VMs using Azure Disk
# Encryption (it encrypts the temporary disk inside the guest), detected from the
# AzureDiskEncryption(ForLinux) extension or osDisk.encryptionSettings.enabled; a VM whose
# extensions were not fetched is indeterminate. Scale sets are read from their model
# (extensionProfile); AKS node-pool scale sets are left to the AKS rules.
package scanledger.rules.compute.encryption_at_host_disabled

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-006",
	"title": "VM does not use encryption at host",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets"],
	"frameworks": {
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "Encryption at host is off and Azure Disk Encryption is not in use, so the VM's temporary disk and the host-side caches of its OS and data disks are stored unencrypted on the host. Managed disks themselves are still encrypted at rest in storage.",
	"remediation": {
		"portal": "Deallocate the VM > Disks > Additional settings > Encryption at host: Yes > Save > start the VM (register the EncryptionAtHost feature on the subscription first).",
		"cli": "az vm update --resource-group <rg> --name <vm> --set securityProfile.encryptionAtHost=true",
	},
	"related": {"extensions": "2024-07-01"},
}

candidate(r) if {
	not compute.aks_managed(r)
	not lib.is_true(compute.get(compute.security_profile(r), ["encryptionAtHost"]))
	compute.security_type(r) != "confidentialvm"
	not lib.is_true(compute.get(compute.model(r), ["storageProfile", "osDisk", "encryptionSettings", "enabled"]))
}

uses_ade(r) if {
	compute.is_vm(r)
	some e in compute.vm_extensions(r)
	compute.ext_type(e) in compute.ade_types
	not compute.ext_failed(e)
}

uses_ade(r) if {
	compute.is_vmss(r)
	some e in compute.vmss_extensions(r)
	compute.ext_type(e) in compute.ade_types
}

extensions_known(r) if compute.is_vmss(r)

extensions_known(r) if lib.has_related(r, "extensions")

deny contains lib.finding(r, "", {"encryptionAtHost": v, "securityType": compute.get(compute.security_profile(r), ["securityType"])}) if {
	some r in input.resources
	candidate(r)
	extensions_known(r)
	not uses_ade(r)
	v := compute.get(compute.security_profile(r), ["encryptionAtHost"])
}

indeterminate contains lib.undecided(r, "the VM's extensions were not fetched (Azure Disk Encryption unknown)") if {
	some r in input.resources
	candidate(r)
	not extensions_known(r)
}
