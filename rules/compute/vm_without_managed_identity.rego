# VMs with no managed identity (identity absent or type "None"). Informational: a VM that
# never calls Azure APIs needs none, and having none is least privilege. It is reported
# because workloads that do call Azure without one must hold stored secrets (connection
# strings, service principal keys) on the VM instead.
# AKS-managed node VMs and scale sets (tags aks-managed-*) are left to the AKS rules.
package scanledger.rules.compute.vm_without_managed_identity

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-011",
	"title": "VM has no managed identity",
	"severity": "info",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines"],
	"frameworks": {
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17"],
	},
	"description": "The VM has neither a system- nor a user-assigned managed identity. If software on it accesses Azure resources, it must do so with stored credentials that can leak; a managed identity gets tokens without secrets.",
	"remediation": {
		"portal": "Virtual machine > Security > Identity > System assigned > Status: On > Save, then grant it only the roles it needs.",
		"cli": "az vm identity assign --resource-group <rg> --name <vm>",
	},
}

has_identity(r) if {
	t := compute.lc(compute.get(r, ["identity", "type"]))
	t != ""
	t != "none"
}

deny contains lib.finding(r, "", {"identityType": compute.get(r, ["identity", "type"])}) if {
	some r in input.resources
	not compute.aks_managed(r)
	not has_identity(r)
}
