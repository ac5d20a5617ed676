# Boot integrity: Trusted Launch (or a confidential VM) with Secure Boot and vTPM.
# - securityProfile.securityType absent, "Standard", or anything but TrustedLaunch /
#   ConfidentialVM: the VM boots without Secure Boot and vTPM (sub_item "securityType").
#   Absent means Standard: Azure writes the type on VMs created as Trusted Launch.
# - a Trusted Launch / confidential VM with uefiSettings.secureBootEnabled or vTpmEnabled
#   explicitly false (sub_items "secureBootEnabled", "vTpmEnabled"). ARM documents no
#   default for these flags, so an unreported flag is indeterminate, not a pass.
# Scale sets are read from their VM model; AKS node-pool scale sets (tags aks-managed-*)
# are configured through the cluster and left to the AKS rules.
package scanledger.rules.compute.trusted_launch_disabled

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-005",
	"title": "VM boots without Trusted Launch, Secure Boot or vTPM",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets"],
	"frameworks": {
		"cis_azure": ["7.9"],
		"cis_v3": ["8.11"],
		"nist_csf": ["PR.DS-6"],
		"iso27001": ["A.8.9"],
	},
	"description": "The VM (or scale set model) does not use Trusted Launch with Secure Boot and vTPM, so bootkits and rootkits that replace the boot loader or kernel are neither blocked nor detectable through measured boot and guest attestation.",
	"remediation": {
		"portal": "Virtual machine > Settings > Configuration > Security type: Trusted launch virtual machines, with Secure Boot and vTPM checked (Generation 2 image required; deallocate the VM first).",
		"cli": "az vm update --resource-group <rg> --name <vm> --security-type TrustedLaunch --enable-secure-boot true --enable-vtpm true",
	},
}

in_scope(r) if not compute.aks_managed(r)

uefi(r, flag) := compute.get(compute.security_profile(r), ["uefiSettings", flag])

deny contains lib.finding(r, "securityType", {"securityType": compute.get(compute.security_profile(r), ["securityType"])}) if {
	some r in input.resources
	in_scope(r)
	not compute.trusted_or_confidential(r)
}

deny contains lib.finding(r, flag, {"securityType": compute.get(compute.security_profile(r), ["securityType"]), flag: v}) if {
	some r in input.resources
	in_scope(r)
	compute.trusted_or_confidential(r)
	some flag in ["secureBootEnabled", "vTpmEnabled"]
	v := uefi(r, flag)
	lib.is_false(v)
}

indeterminate contains lib.undecided(r, "Trusted Launch is on but uefiSettings does not report Secure Boot / vTPM") if {
	some r in input.resources
	in_scope(r)
	compute.trusted_or_confidential(r)
	some flag in ["secureBootEnabled", "vTpmEnabled"]
	v := uefi(r, flag)
	not lib.is_false(v)
	not lib.is_true(v)
}
