# Unattached managed disks that can be exported (downloaded through a SAS URI) from any
# network: networkAccessPolicy AllowAll and publicNetworkAccess not Disabled. Both
# defaults are open (AllowAll / Enabled), so absent values fire. publicNetworkAccess
# Disabled blocks internet export even with AllowAll; AllowPrivate (through a disk access
# resource) and DenyAll block it too. Only disks that are not attached are judged:
# unattached disks (often forgotten copies) and disks with an active export SAS
# (ActiveSAS / ActiveSASFrozen) or upload can be read or written at any time, while an
# attached disk cannot be exported while its VM holds it.
# Generating the SAS still needs Microsoft.Compute/disks/beginGetAccess: low severity.
package scanledger.rules.compute.disk_export_from_any_network

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-008",
	"title": "Unattached managed disk can be exported from any network",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/disks"],
	"frameworks": {
		# CIS v3.0.0 8.5 asks this of every disk; an attached disk cannot be exported (above).
		"cis_v3": ["8.5"],
		"nist_csf": ["PR.DS-5", "PR.AC-5"],
		"iso27001": ["A.8.12", "A.8.20"],
	},
	"description": "The disk is not attached to a VM and its network access policy lets an export SAS URI be used from any internet address, so anyone who obtains such a URI can download the whole disk image.",
	"remediation": {
		"portal": "Disk > Settings > Networking > Network access: Disable public access and enable private access (with a disk access resource) or Disable public and private access > Save. Delete the disk if it is no longer needed.",
		"cli": "az disk update --resource-group <rg> --name <disk> --network-access-policy DenyAll --public-network-access Disabled",
	},
}

policy(d) := p if {
	p := compute.lc(compute.get(d, ["properties", "networkAccessPolicy"]))
	p != ""
} else := "allowall"

public_disabled(d) if compute.lc(compute.get(d, ["properties", "publicNetworkAccess"])) == "disabled"

deny contains lib.finding(d, "", details) if {
	some d in input.resources
	not compute.disk_attached(d)
	policy(d) == "allowall"
	not public_disabled(d)
	details := {
		"diskState": compute.get(d, ["properties", "diskState"]),
		"networkAccessPolicy": compute.get(d, ["properties", "networkAccessPolicy"]),
		"publicNetworkAccess": compute.get(d, ["properties", "publicNetworkAccess"]),
	}
}
