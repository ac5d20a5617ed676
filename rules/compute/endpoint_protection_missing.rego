# VMs with no endpoint protection extension. Reads the VM's extensions (related
# `extensions`, a list; null = none) and looks for a protection handler by its type
# (properties.type), never by the extension's name, which is free text. Counted:
# Defender for Endpoint (MDE.Windows / MDE.Linux, installed by Defender for Servers),
# Microsoft Antimalware (IaaSAntimalware), and third-party EDR/AV handlers published as VM
# extensions. Not counted: the Azure Monitor agents and the retired Log Analytics agent
# (MicrosoftMonitoringAgent / OmsAgentForLinux) collect logs and protect nothing; an
# extension whose provisioning failed protects nothing either.
# Limitation stated in the description: protection installed inside the image or by
# configuration management is invisible to ARM.
# AKS-managed node VMs and scale sets (tags aks-managed-*) are left to the AKS rules.
package scanledger.rules.compute.endpoint_protection_missing

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-004",
	"title": "VM has no endpoint protection extension",
	"severity": "medium",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines"],
	"frameworks": {
		"cis_azure": ["7.6"],
		"cis_v3": ["8.8"],
		"nist_csf": ["DE.CM-4"],
		"iso27001": ["A.8.7"],
	},
	"description": "None of the VM's extensions is an endpoint protection agent (Microsoft Defender for Endpoint, Microsoft Antimalware, or a third-party EDR extension), so malware and attacker activity on the VM may go undetected. Protection installed inside the image or by configuration management (and the Microsoft Defender Antivirus built into Windows Server 2016 and later) is invisible to ARM: if the VM is covered that way, suppress the finding for it.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > subscription > Defender plans > Servers: On, with the Endpoint protection component enabled (installs MDE.Windows / MDE.Linux).",
		"cli": "az security pricing create --name VirtualMachines --tier Standard",
	},
	"related": {"extensions": "2024-07-01"},
}

# Extension handler types (lower-case) that provide endpoint protection.
protection_types := {
	"mde.windows", # Microsoft Defender for Endpoint (Defender for Servers)
	"mde.linux",
	"iaasantimalware", # Microsoft Antimalware for Azure (Microsoft.Azure.Security)
	"endpointsecurity", # McAfee Endpoint Security
	"endpointprotection", # Symantec Endpoint Protection
}

# Handler type prefixes of third-party agents that come in per-OS variants.
protection_prefixes := {
	"trendmicrodsa", # Trend Micro Deep Security Agent: TrendMicroDSA, TrendMicroDSALinux
	"scwpagent", # Symantec Cloud Workload Protection: SCWPAgentForWindows / ForLinux
}

is_protection(e) if compute.ext_type(e) in protection_types

is_protection(e) if {
	some p in protection_prefixes
	startswith(compute.ext_type(e), p)
}

working_protection(r) if {
	some e in compute.vm_extensions(r)
	is_protection(e)
	not compute.ext_failed(e)
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	not compute.aks_managed(r)
	lib.has_related(r, "extensions")
	not working_protection(r)
	details := {
		"osType": compute.os_type(r),
		"extensions": [t | some e in compute.vm_extensions(r); t := compute.get(e, ["properties", "type"])],
		"failedProtection": [t |
			some e in compute.vm_extensions(r)
			is_protection(e)
			compute.ext_failed(e)
			t := compute.get(e, ["properties", "type"])
		],
	}
}

indeterminate contains lib.undecided(r, "the VM's extensions were not fetched") if {
	some r in input.resources
	not compute.aks_managed(r)
	lib.related_missing(r, "extensions")
}
