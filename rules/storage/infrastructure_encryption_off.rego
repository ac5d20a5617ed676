# Storage account without infrastructure encryption (CIS v2.1.0 3.2 / v3.0.0 4.2):
# `encryption.requireInfrastructureEncryption` not true (absent means false, the
# default). Low: double encryption guards against a flaw in one of the two layers; it
# can only be set when the account is created.
package scanledger.rules.storage.infrastructure_encryption_off

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-019",
	"title": "Storage account has no infrastructure (double) encryption",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.2"],
		"cis_v3": ["4.2"],
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "Infrastructure encryption is off, so data is encrypted once (by the service) instead of also at the infrastructure layer with a second key and algorithm. It can only be chosen when the account is created. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.encryption.requireInfrastructureEncryption`.",
	"remediation": {
		"portal": "Infrastructure encryption can only be enabled at creation: create a new account with Encryption > Enable infrastructure encryption, and move the data to it.",
		"cli": "az storage account create --resource-group <rg> --name <new-account> --require-infrastructure-encryption true",
	},
}

deny contains lib.finding(r, "", {"requireInfrastructureEncryption": lib.prop(r, ["encryption", "requireInfrastructureEncryption"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.is_true(lib.prop(r, ["encryption", "requireInfrastructureEncryption"], false))
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
