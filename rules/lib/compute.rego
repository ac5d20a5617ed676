# Helpers for the compute rules (virtual machines, scale sets, managed disks).
# Every helper tolerates null and missing properties: in regorus `lower(null)` and
# `some x in null` are errors, and ARM returns null for many unset properties.
package scanledger.lib.compute

import data.scanledger.lib
import rego.v1

# ---------------------------------------------------------------------------------------
# Null-safe access

# str(x): x if it is a string, "" otherwise.
str(x) := x if {
	is_string(x)
} else := ""

# lc(x): lower-case string, "" for anything that is not a string.
lc(x) := lower(x) if {
	is_string(x)
} else := ""

# obj(x): x if it is an object, {} otherwise.
obj(x) := x if {
	is_object(x)
} else := {}

# arr(x): x if it is an array, [] otherwise.
arr(x) := x if {
	is_array(x)
} else := []

# get(x, path): x.<path>, or null when absent (through nulls too).
get(x, path) := object.get(x, path, null) if {
	is_object(x)
} else := null

# ---------------------------------------------------------------------------------------
# Virtual machines and scale sets

is_vm(r) if lc(r.type) == "microsoft.compute/virtualmachines"

is_vmss(r) if lc(r.type) == "microsoft.compute/virtualmachinescalesets"

# model(r): the VM model. A VM's own properties; a scale set's virtualMachineProfile.
# Looked up in `models`, a rule and not a function, so it is computed once per query: the
# scanner evaluates all compute rules of a chunk in one query, and they all read it.
model(r) := models[r.id]

models := {r.id: model_of(r) | some r in input.resources}

model_of(r) := obj(get(r, ["properties", "virtualMachineProfile"])) if {
	is_vmss(r)
} else := obj(get(r, ["properties"]))

os_profile(r) := obj(get(model(r), ["osProfile"]))

windows_config(r) := obj(get(os_profile(r), ["windowsConfiguration"]))

linux_config(r) := obj(get(os_profile(r), ["linuxConfiguration"]))

security_profile(r) := obj(get(model(r), ["securityProfile"]))

# The scanner computes the rest once per machine, in Rust, before the rules run
# (`r.facts.compute`, src/scanner/facts.rs; checked against the Rego definitions they
# replaced by tests/facts.rs): most VM rules ask for them, and each was a chain of calls.

# has_os_profile(r): the VM was provisioned from an image with an OS profile. VMs created
# by attaching an existing (specialized) OS disk have none, and their guest settings
# (patch mode, SSH password login) cannot be read or set through ARM.
has_os_profile(r) if r.facts.compute.has_os_profile

# os_type(r): "windows" or "linux" (from the OS disk, else from the OS profile), or "".
os_type(r) := r.facts.compute.os_type

# patch_mode(r): the patch mode as set, lower-case, "" when not set.
patch_mode(r) := r.facts.compute.patch_mode

# effective_patch_mode(r): Azure's documented defaults applied. Windows: "AutomaticByOS"
# when enableAutomaticUpdates is true or absent (its default is true), "Manual" when it is
# false. Linux: "ImageDefault". Lower case.
effective_patch_mode(r) := r.facts.compute.effective_patch_mode

# security_type(r): "trustedlaunch", "confidentialvm", or "" / "standard" for neither.
security_type(r) := r.facts.compute.security_type

trusted_or_confidential(r) if r.facts.compute.trusted_or_confidential

# aks_managed(r): a scale set or VM that AKS creates and manages for a node pool (tags
# aks-managed-*, also on VMs of "Virtual Machines" node pools). Their OS settings, patching,
# identity and security agents are governed through the cluster (node OS upgrade channel,
# node pool security profile, Defender for Containers), so the VM rules leave them to the
# AKS rules. Their standalone disks (persistent volumes) are still judged.
aks_managed(r) if r.facts.compute.aks_managed

# ---------------------------------------------------------------------------------------
# Extensions

# vm_extensions(r): the VM's extensions from the related `extensions` list (null = none).
vm_extensions(r) := arr(lib.related(r, "extensions"))

# vmss_extensions(r): the extensions in a scale set's model.
vmss_extensions(r) := arr(get(model(r), ["extensionProfile", "extensions"]))

# ext_type(e): the extension handler type (e.g. "MDE.Linux"), lower-case. The type, not
# the extension's name, identifies the handler: names are chosen by whoever installs it.
ext_type(e) := lc(get(e, ["properties", "type"]))

ext_failed(e) if lc(get(e, ["properties", "provisioningState"])) == "failed"

# Azure Disk Encryption handlers (Windows and Linux).
ade_types := {"azurediskencryption", "azurediskencryptionforlinux"}

# ---------------------------------------------------------------------------------------
# Managed disks

# disk_attached(d): the disk is attached to a VM (running or deallocated). diskState is
# what ARM reports; without it, managedBy names the VM the disk is attached to.
disk_attached(d) if lc(get(d, ["properties", "diskState"])) in {"attached", "reserved"}

disk_attached(d) if {
	get(d, ["properties", "diskState"]) == null
	str(get(d, ["managedBy"])) != ""
}
