# Scale sets whose instances get no automatic OS patching: automatic OS image upgrades are
# off (upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade not true; its
# default is false) AND the model's patch mode does not patch either: Windows "Manual"
# (or enableAutomaticUpdates false), Linux "ImageDefault" (the Linux default). Windows
# "AutomaticByOS" (the Windows default) and "AutomaticByPlatform" patch the instances, so
# they pass. AKS node-pool scale sets (tags aks-managed-*) are upgraded by AKS through the
# cluster's node OS upgrade channel and are left to the AKS rules.
package scanledger.rules.compute.vmss_automatic_os_upgrade_disabled

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-009",
	"title": "Scale set instances are not patched or upgraded automatically",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachineScaleSets"],
	"frameworks": {
		"nist_csf": ["PR.IP-12"],
		"iso27001": ["A.8.8"],
	},
	"description": "Automatic OS image upgrades are off and the instances' patch mode does not install updates, so scale set instances keep running the OS image they were created from until someone rolls out a new image or patches them with external tooling.",
	"remediation": {
		"portal": "Virtual machine scale set > Settings > Upgrade policy: Rolling or Automatic, and Operating system > Automatic OS upgrade: Enabled (platform or Azure Compute Gallery images), or set patch orchestration to Azure Managed - Safe Deployment.",
		"cli": "az vmss update --resource-group <rg> --name <vmss> --set upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade=true",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not compute.aks_managed(r)
	auto := compute.get(r, ["properties", "upgradePolicy", "automaticOSUpgradePolicy", "enableAutomaticOSUpgrade"])
	not lib.is_true(auto)
	compute.has_os_profile(r)
	mode := compute.effective_patch_mode(r)
	mode in {"manual", "imagedefault"}
	details := {
		"enableAutomaticOSUpgrade": auto,
		"upgradePolicyMode": compute.get(r, ["properties", "upgradePolicy", "mode"]),
		"osType": compute.os_type(r),
		"effectivePatchMode": mode,
	}
}
