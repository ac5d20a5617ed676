# Blob versioning is off: `blobServices/default` properties.isVersioningEnabled (default
# false). Versioning is not available with a hierarchical namespace (Data Lake Gen2, which
# NFS 3.0 and SFTP also require), nor on premium page-blob or general-purpose v1 accounts,
# so those are not flagged.
package scanledger.rules.storage.blob_versioning

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "blobServices/default"

metadata := {
	"id": "AZ-STG-013",
	"title": "Blob versioning is disabled",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13"],
	},
	"description": "Previous versions of blobs are not kept, so an overwrite (a faulty deployment, ransomware encrypting blobs in place) cannot be rolled back; soft delete alone does not protect against overwrites.",
	"remediation": {
		"portal": "Storage account > Data management > Data protection > Enable versioning for blobs > Save (pair it with a lifecycle rule that deletes old versions).",
		"cli": "az storage account blob-service-properties update --account-name <account> --resource-group <rg> --enable-versioning true",
	},
	"related": {"blobServices/default": "2023-05-01"},
}

applies(r) if {
	slib.block_blob(r)
	not slib.hns(r)
}

deny contains lib.finding(r, "", {"isVersioningEnabled": object.get(doc, ["properties", "isVersioningEnabled"], null)}) if {
	some r in input.resources
	applies(r)
	lib.has_related(r, path)
	doc := lib.related(r, path)
	is_object(doc)
	not lib.is_true(object.get(doc, ["properties", "isVersioningEnabled"], false))
}

indeterminate contains lib.undecided(r, "the blob service properties (blobServices/default) were not fetched") if {
	some r in input.resources
	applies(r)
	lib.related_missing(r, path)
}

indeterminate contains lib.undecided(r, "ARM returned no blob service properties (blobServices/default) for the account") if {
	some r in input.resources
	applies(r)
	lib.has_related(r, path)
	not is_object(lib.related(r, path))
}
