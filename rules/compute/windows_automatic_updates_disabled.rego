# Windows VMs whose automatic updates are switched off: patch mode "Manual", or
# enableAutomaticUpdates false. Azure's documented defaults are safe: without a patch
# mode, a Windows VM is "AutomaticByOS" when enableAutomaticUpdates is true or absent
# (it defaults to true), so only an explicit Manual / false fires. Linux has no "off"
# mode in ARM (see AZ-VM-002). VMs attached to an existing OS disk have no osProfile and
# cannot carry these settings: they are not judged.
# AKS-managed node VMs and scale sets (tags aks-managed-*) are left to the AKS rules.
package scanledger.rules.compute.windows_automatic_updates_disabled

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-001",
	"title": "Windows VM has automatic updates turned off",
	"severity": "medium",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines"],
	"frameworks": {
		"nist_csf": ["PR.IP-12"],
		"iso27001": ["A.8.8"],
	},
	"description": "The VM's patch mode is Manual (automatic updates disabled), so neither Windows Update nor Azure installs security patches; the VM stays vulnerable until someone patches it by hand or with external tooling.",
	"remediation": {
		"portal": "Virtual machine > Operations > Updates > Update settings > Patch orchestration: Azure Managed - Safe Deployment (or Windows automatic updates) > Save.",
		"cli": "az vm update --resource-group <rg> --name <vm> --set osProfile.windowsConfiguration.enableAutomaticUpdates=true osProfile.windowsConfiguration.patchSettings.patchMode=AutomaticByPlatform",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not compute.aks_managed(r)
	compute.has_os_profile(r)
	compute.os_type(r) == "windows"
	compute.effective_patch_mode(r) == "manual"
	cfg := compute.windows_config(r)
	details := {
		"patchMode": compute.get(cfg, ["patchSettings", "patchMode"]),
		"enableAutomaticUpdates": compute.get(cfg, ["enableAutomaticUpdates"]),
	}
}
