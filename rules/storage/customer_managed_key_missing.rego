# Storage account encrypted with Microsoft-managed keys (CIS v2.1.0 3.12 / v3.0.0 4.11
# "Storage for Critical Data are Encrypted with Customer Managed Keys"). Reads
# `encryption.keySource` (Microsoft.Storage or Microsoft.Keyvault); absent means
# Microsoft.Storage, the default. Low: data is encrypted at rest either way; the control
# is about who holds the key. The rule cannot tell which accounts hold critical data.
package scanledger.rules.storage.customer_managed_key_missing

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-018",
	"title": "Storage account is not encrypted with a customer-managed key",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.12"],
		"cis_v3": ["4.11"],
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account encrypts data with Microsoft-managed keys (encryption.keySource Microsoft.Storage), so the organisation cannot rotate, audit or revoke the key protecting its data. Use a customer-managed key in Key Vault for accounts holding critical data. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.encryption.keySource`.",
	"remediation": {
		"portal": "Storage account > Security + networking > Encryption > Encryption type: Customer-managed keys > select the key vault and key > Save.",
		"cli": "az storage account update --resource-group <rg> --name <account> --encryption-key-source Microsoft.Keyvault --encryption-key-vault <vault-uri> --encryption-key-name <key>",
	},
}

deny contains lib.finding(r, "", {"keySource": lib.prop(r, ["encryption", "keySource"], "(not set: Microsoft.Storage)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	slib.lc(lib.prop(r, ["encryption", "keySource"], "Microsoft.Storage")) != "microsoft.keyvault"
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
