# VMs without boot diagnostics (diagnosticsProfile.bootDiagnostics.enabled not true; the
# API leaves it off unless asked, so absent = off). Informational: it is a troubleshooting
# and forensics aid (boot screenshots, serial log, and the serial console, which needs
# it), not a protection.
# AKS-managed node VMs and scale sets (tags aks-managed-*) are left to the AKS rules.
package scanledger.rules.compute.boot_diagnostics_disabled

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-012",
	"title": "VM boot diagnostics are disabled",
	"severity": "info",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/virtualMachines"],
	"frameworks": {
		"nist_csf": ["PR.PT-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "Boot diagnostics are off, so there is no boot screenshot or serial log to investigate a VM that fails to boot or was tampered with, and the serial console cannot be used for out-of-band recovery.",
	"remediation": {
		"portal": "Virtual machine > Help > Boot diagnostics > Settings > Enable with managed storage account > Save.",
		"cli": "az vm boot-diagnostics enable --resource-group <rg> --name <vm>",
	},
}

deny contains lib.finding(r, "", {"bootDiagnosticsEnabled": v}) if {
	some r in input.resources
	not compute.aks_managed(r)
	v := compute.get(r, ["properties", "diagnosticsProfile", "bootDiagnostics", "enabled"])
	not lib.is_true(v)
}
