# Blob soft delete is off. The setting lives in the child `blobServices/default`
# (properties.deleteRetentionPolicy.enabled); the API default is disabled, so an absent
# policy fires. A 404 (null) for the blob service of a blob-capable account is unexpected
# and reported as indeterminate rather than guessed.
package scanledger.rules.storage.blob_soft_delete

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "blobServices/default"

metadata := {
	"id": "AZ-STG-011",
	"title": "Blob soft delete is disabled",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.11"],
		"cis_v3": ["4.10"],
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13"],
	},
	"description": "Deleted or overwritten blobs are not retained, so an accidental deletion, a faulty application or an attacker holding write access destroys data irrecoverably.",
	"remediation": {
		"portal": "Storage account > Data management > Data protection > Enable soft delete for blobs (7 days or more) > Save.",
		"cli": "az storage account blob-service-properties update --account-name <account> --resource-group <rg> --enable-delete-retention true --delete-retention-days 14",
	},
	"related": {"blobServices/default": "2023-05-01"},
}

deny contains lib.finding(r, "", {"deleteRetentionPolicy": object.get(doc, ["properties", "deleteRetentionPolicy"], null)}) if {
	some r in input.resources
	slib.has_blob(r)
	lib.has_related(r, path)
	doc := lib.related(r, path)
	is_object(doc)
	not lib.is_true(object.get(doc, ["properties", "deleteRetentionPolicy", "enabled"], false))
}

indeterminate contains lib.undecided(r, "the blob service properties (blobServices/default) were not fetched") if {
	some r in input.resources
	slib.has_blob(r)
	lib.related_missing(r, path)
}

indeterminate contains lib.undecided(r, "ARM returned no blob service properties (blobServices/default) for the account") if {
	some r in input.resources
	slib.has_blob(r)
	lib.has_related(r, path)
	not is_object(lib.related(r, path))
}
