# File share soft delete off on an account that holds shares: the related
# fileServices/default document's `shareDeleteRetentionPolicy.enabled` is not true (absent
# means off; new accounts get 7 days on by default since 2021). Prowler
# storage_ensure_file_shares_soft_delete_is_enabled.
package scanledger.rules.storage.file_share_soft_delete_off

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-025",
	"title": "Storage account file shares have no soft delete",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.IP-4", "PR.DS-1"],
		"iso27001": ["A.8.13"],
	},
	"description": "The account holds file shares but share soft delete is off, so a deleted share (by mistake, by a compromised key or by ransomware) and all its files are gone at once. Reads Microsoft.Storage/storageAccounts/fileServices 2023-05-01 `properties.shareDeleteRetentionPolicy.enabled` and the fileServices/default/shares list.",
	"remediation": {
		"portal": "Storage account > Data management > Data protection > Enable soft delete for file shares, 7 days or more > Save.",
		"cli": "az storage account file-service-properties update --resource-group <rg> --account-name <account> --enable-delete-retention true --delete-retention-days 14",
	},
	"related": {"fileServices/default": "2023-05-01", "fileServices/default/shares": "2023-05-01"},
}

# Judged on accounts that offer Azure Files and hold at least one share (the related
# fileServices/default/shares list): the setting has nothing to protect otherwise.
holds_shares(r) if {
	slib.offers_files(r)
	lib.has_related(r, "fileServices/default/shares")
	count(slib.list_items(r, "fileServices/default/shares")) > 0
}

file_service(r) := lib.obj(object.get(lib.obj(lib.related(r, "fileServices/default")), "properties", {})) if lib.has_related(r, "fileServices/default")

indeterminate contains lib.undecided(r, "the file service settings or the list of shares were not fetched") if {
	some r in input.resources
	slib.offers_files(r)
	some path in ["fileServices/default", "fileServices/default/shares"]
	lib.related_missing(r, path)
}

deny contains lib.finding(r, "", {"shareDeleteRetentionPolicy": object.get(file_service(r), "shareDeleteRetentionPolicy", null), "shares": count(slib.list_items(r, "fileServices/default/shares"))}) if {
	some r in input.resources
	holds_shares(r)
	lib.has_related(r, "fileServices/default")
	not lib.is_true(object.get(file_service(r), ["shareDeleteRetentionPolicy", "enabled"], false))
}
