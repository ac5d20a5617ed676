# Container soft delete is off: `blobServices/default` properties.containerDeleteRetentionPolicy
# (API default: disabled, so absent fires). Checked on block-blob accounts (general-purpose
# v2, BlobStorage, BlockBlobStorage); premium page-blob and general-purpose v1 accounts are
# left out.
package scanledger.rules.storage.container_soft_delete

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "blobServices/default"

metadata := {
	"id": "AZ-STG-012",
	"title": "Container soft delete is disabled",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.11"],
		"cis_v3": ["4.10"],
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13"],
	},
	"description": "Deleted containers are not retained, so deleting a container (by mistake or by an attacker) destroys every blob in it at once, even when blob soft delete is on.",
	"remediation": {
		"portal": "Storage account > Data management > Data protection > Enable soft delete for containers (7 days or more) > Save.",
		"cli": "az storage account blob-service-properties update --account-name <account> --resource-group <rg> --enable-container-delete-retention true --container-delete-retention-days 14",
	},
	"related": {"blobServices/default": "2023-05-01"},
}

deny contains lib.finding(r, "", {"containerDeleteRetentionPolicy": object.get(doc, ["properties", "containerDeleteRetentionPolicy"], null)}) if {
	some r in input.resources
	slib.block_blob(r)
	lib.has_related(r, path)
	doc := lib.related(r, path)
	is_object(doc)
	not lib.is_true(object.get(doc, ["properties", "containerDeleteRetentionPolicy", "enabled"], false))
}

indeterminate contains lib.undecided(r, "the blob service properties (blobServices/default) were not fetched") if {
	some r in input.resources
	slib.block_blob(r)
	lib.related_missing(r, path)
}

indeterminate contains lib.undecided(r, "ARM returned no blob service properties (blobServices/default) for the account") if {
	some r in input.resources
	slib.block_blob(r)
	lib.has_related(r, path)
	not is_object(lib.related(r, path))
}
