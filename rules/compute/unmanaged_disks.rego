# VMs using unmanaged disks: a disk in storageProfile with a `vhd` (a page blob in a
# storage account) instead of `managedDisk`. One finding per disk: sub_item "osDisk" or
# the data disk's name (stable; "lun-<n>" when the name is missing).
package scanledger.rules.compute.unmanaged_disks

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-010",
	"title": "VM uses unmanaged (VHD blob) disks",
	"severity": "medium",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines"],
	"frameworks": {
		"cis_azure": ["7.2"],
		"cis_v3": ["8.2"],
		"nist_csf": ["PR.DS-1", "PR.AC-4"],
		"iso27001": ["A.8.3"],
	},
	"description": "The disk is a VHD page blob in a storage account, so anyone with that account's keys or a SAS can read or copy it, and it cannot use disk encryption sets, encryption at host or disk RBAC. Unmanaged disks are retired in Azure.",
	"remediation": {
		"portal": "Deallocate the VM > Disks > Migrate to managed disks > Migrate.",
		"cli": "az vm convert --resource-group <rg> --name <vm>",
	},
}

unmanaged(disk) if is_object(compute.get(disk, ["vhd"]))

storage_profile(r) := compute.obj(compute.get(r, ["properties", "storageProfile"]))

deny contains lib.finding(r, "osDisk", {"vhd": compute.get(disk, ["vhd", "uri"])}) if {
	some r in input.resources
	disk := compute.get(storage_profile(r), ["osDisk"])
	unmanaged(disk)
}

deny contains lib.finding(r, name, {"lun": compute.get(disk, ["lun"]), "vhd": compute.get(disk, ["vhd", "uri"])}) if {
	some r in input.resources
	some disk in compute.arr(compute.get(storage_profile(r), ["dataDisks"]))
	unmanaged(disk)
	name := disk_name(disk)
}

disk_name(disk) := n if {
	n := compute.str(compute.get(disk, ["name"]))
	n != ""
} else := sprintf("lun-%v", [compute.get(disk, ["lun"])])
