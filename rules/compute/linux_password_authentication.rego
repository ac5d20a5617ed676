# Linux VMs and scale sets provisioned to accept SSH password logins
# (osProfile.linuxConfiguration.disablePasswordAuthentication false). ARM keeps the
# provisioning-time value (it cannot be changed on an existing VM), so a VM whose sshd
# was hardened afterwards still reports false: the description says to suppress then.
# ARM documents no default for the flag and always reports it for Linux VMs with an OS
# profile, so a Linux profile without it is reported as indeterminate rather than
# guessed. VMs attached to an existing OS disk (no osProfile) cannot be judged from ARM.
# AKS-managed node VMs and scale sets (tags aks-managed-*) are left to the AKS rules.
package scanledger.rules.compute.linux_password_authentication

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-003",
	"title": "Linux VM allows SSH password authentication",
	"severity": "medium",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets"],
	"frameworks": {
		"nist_csf": ["PR.AC-7"],
		"iso27001": ["A.8.5"],
	},
	"description": "The VM was provisioned with SSH password authentication allowed, so the administrator account can be brute-forced or used with a leaked password wherever SSH is reachable. ARM records the provisioning-time setting: if sshd has since been configured with PasswordAuthentication no, suppress the finding.",
	"remediation": {
		"portal": "Set PasswordAuthentication no in /etc/ssh/sshd_config (or recreate the VM with SSH public key authentication), and use Microsoft Entra ID login or Azure Bastion for interactive access.",
		"cli": "az vm run-command invoke --resource-group <rg> --name <vm> --command-id RunShellScript --scripts \"sed -i 's/^#*PasswordAuthentication .*/PasswordAuthentication no/' /etc/ssh/sshd_config && systemctl reload sshd\"",
	},
}

linux_profile(r) if {
	compute.has_os_profile(r)
	compute.os_type(r) == "linux"
}

flag(r) := compute.get(compute.linux_config(r), ["disablePasswordAuthentication"])

deny contains lib.finding(r, "", {"disablePasswordAuthentication": v}) if {
	some r in input.resources
	not compute.aks_managed(r)
	linux_profile(r)
	v := flag(r)
	lib.is_false(v)
}

indeterminate contains lib.undecided(r, "the Linux OS profile does not report disablePasswordAuthentication") if {
	some r in input.resources
	not compute.aks_managed(r)
	linux_profile(r)
	v := flag(r)
	not lib.is_false(v)
	not lib.is_true(v)
}
