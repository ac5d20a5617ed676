# Linux VMs in patch mode "ImageDefault" (also Azure's default when no patch mode is
# set): Azure neither installs nor assesses updates, and whether the guest patches itself
# depends on the distribution image (Ubuntu's unattended-upgrades installs security
# updates; RHEL and SLES images do not by default). AutomaticByPlatform hands patching to
# Azure (Update Manager schedules or automatic guest patching). Low: the VM may be patched
# by tooling ARM cannot see. Windows VMs in AutomaticByOS are patched by Windows Update
# and are not flagged; Windows "Manual" is AZ-VM-001.
# AKS-managed node VMs and scale sets (tags aks-managed-*) are left to the AKS rules.
package scanledger.rules.compute.linux_patching_image_default

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-002",
	"title": "Linux VM patching is left to the image defaults",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines"],
	"frameworks": {
		"nist_csf": ["PR.IP-12"],
		"iso27001": ["A.8.8"],
	},
	"description": "The Linux VM's patch mode is ImageDefault, so Azure does not install or assess OS updates; unless the distribution or your own tooling patches it, security updates are not applied.",
	"remediation": {
		"portal": "Virtual machine > Operations > Updates > Update settings > Patch orchestration: Customer Managed Schedules or Azure Managed - Safe Deployment > Save.",
		"cli": "az vm update --resource-group <rg> --name <vm> --set osProfile.linuxConfiguration.patchSettings.patchMode=AutomaticByPlatform osProfile.linuxConfiguration.patchSettings.assessmentMode=AutomaticByPlatform",
	},
}

deny contains lib.finding(r, "", {"patchMode": mode, "effectivePatchMode": "ImageDefault"}) if {
	some r in input.resources
	not compute.aks_managed(r)
	compute.has_os_profile(r)
	compute.os_type(r) == "linux"
	compute.effective_patch_mode(r) == "imagedefault"
	mode := compute.get(compute.linux_config(r), ["patchSettings", "patchMode"])
}
