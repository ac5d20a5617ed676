# Managed disks encrypted only with platform-managed keys. Every managed disk is
# encrypted at rest (server-side encryption cannot be turned off), so this is not
# "unencrypted data": it flags disks whose keys the customer does not control (no
# rotation, revocation or crypto-shredding under their own Key Vault). Low severity.
# encryption.type absent = EncryptionAtRestWithPlatformKey (Azure's default). Not flagged:
# EncryptionAtRestWithCustomerKey, EncryptionAtRestWithPlatformAndCustomerKeys, Azure Disk
# Encryption (encryptionSettingsCollection.enabled, keys in the customer's Key Vault, which
# CIS accepts as CMK), and confidential disks encrypted with a customer key.
package scanledger.rules.compute.disk_not_customer_managed_key

import data.scanledger.lib
import data.scanledger.lib.compute
import rego.v1

metadata := {
	"id": "AZ-VM-007",
	"title": "Managed disk is not encrypted with a customer-managed key",
	"severity": "low",
	"category": "compute",
	"resource_types": ["Microsoft.Compute/disks"],
	"frameworks": {
		"cis_azure": ["7.3", "7.4"],
		"cis_v3": ["8.3", "8.4"],
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The disk is encrypted at rest only with a platform-managed key (it is encrypted, but with a key Microsoft controls), and Azure Disk Encryption is not enabled. Without a customer-managed key the organisation cannot rotate, revoke or audit the key, or make the data unreadable by disabling it.",
	"remediation": {
		"portal": "Create a disk encryption set backed by a Key Vault key; then (with the VM deallocated or the disk unattached) Disk > Settings > Encryption > Key management: Customer-managed key > select the set > Save.",
		"cli": "az disk update --resource-group <rg> --name <disk> --encryption-type EncryptionAtRestWithCustomerKey --disk-encryption-set <disk-encryption-set-id>",
	},
}

customer_key_types := {"encryptionatrestwithcustomerkey", "encryptionatrestwithplatformandcustomerkeys"}

customer_keyed(d) if compute.lc(compute.get(d, ["properties", "encryption", "type"])) in customer_key_types

customer_keyed(d) if lib.is_true(compute.get(d, ["properties", "encryptionSettingsCollection", "enabled"]))

customer_keyed(d) if compute.lc(compute.get(d, ["properties", "securityProfile", "securityType"])) == "confidentialvm_diskencryptedwithcustomerkey"

deny contains lib.finding(d, "", details) if {
	some d in input.resources
	not customer_keyed(d)
	details := {
		"encryptionType": compute.get(d, ["properties", "encryption", "type"]),
		"diskState": compute.get(d, ["properties", "diskState"]),
	}
}
