# The account-level switch that lets containers be made anonymously readable.
# `allowBlobPublicAccess` defaulted to true (or was simply not set, which Azure treats as
# allowed) on accounts created before the November 2023 default change, so an absent or
# null value fires; only an explicit false is safe. FileStorage accounts have no Blob service.
package scanledger.rules.storage.blob_public_access

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-001",
	"title": "Storage account allows anonymous blob access",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.17"],
		"cis_v3": ["4.17"],
		"nist_csf": ["PR.AC-4", "PR.DS-5"],
		"iso27001": ["A.8.3"],
	},
	"description": "The account does not disallow anonymous (public) read access to blobs, so anyone with write access to a container's settings can expose its data to the internet without authentication. Accounts created before November 2023 allow it unless the setting was explicitly turned off.",
	"remediation": {
		"portal": "Storage account > Settings > Configuration > Allow Blob anonymous access: Disabled > Save.",
		"cli": "az storage account update --name <account> --resource-group <rg> --allow-blob-public-access false",
	},
}

deny contains lib.finding(r, "", {"allowBlobPublicAccess": v}) if {
	some r in input.resources
	slib.has_blob(r)
	v := lib.prop(r, ["allowBlobPublicAccess"], null)
	not lib.is_false(v)
}
