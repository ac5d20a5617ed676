# Account keys and key-signed SAS tokens authorize every request without an identity.
# `allowSharedKeyAccess` "defaults to null, which is equivalent to true", so only an
# explicit false passes.
package scanledger.rules.storage.shared_key_access

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-STG-004",
	"title": "Storage account allows shared key authorization",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.17", "A.8.5"],
	},
	"description": "The account accepts requests signed with its access keys (and SAS tokens derived from them). Keys grant full data access, are not tied to an identity, leave no per-user audit trail and are easily leaked; Microsoft Entra ID authorization can replace them.",
	"remediation": {
		"portal": "Storage account > Settings > Configuration > Allow storage account key access: Disabled > Save (move clients to Microsoft Entra ID first).",
		"cli": "az storage account update --name <account> --resource-group <rg> --allow-shared-key-access false",
	},
}

deny contains lib.finding(r, "", {"allowSharedKeyAccess": v}) if {
	some r in input.resources
	v := lib.prop(r, ["allowSharedKeyAccess"], null)
	not lib.is_false(v)
}
