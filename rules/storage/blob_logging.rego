# Blob read/write/delete requests are not logged (the older scanner's STOR-004, blob part).
# Reads the Azure Monitor diagnostic settings of the blob service; a setting counts when it
# has a destination and sends the category by name or through the `allLogs` or `audit`
# category group. Several settings may share the categories between them.
# Classic Storage Analytics logging is configured on the data plane and is not read.
# Accounts with NFS 3.0 enabled do not support Azure Monitor blob logs and are skipped.
package scanledger.rules.storage.blob_logging

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "blobServices/default/providers/Microsoft.Insights/diagnosticSettings"

metadata := {
	"id": "AZ-STG-008",
	"title": "Blob service read, write and delete requests are not logged",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.13"],
		"cis_v3": ["4.13"],
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "No diagnostic setting on the blob service sends the StorageRead, StorageWrite and StorageDelete logs (or the audit / allLogs category group) anywhere, so access to blob data cannot be investigated after an incident.",
	"remediation": {
		"portal": "Storage account > Monitoring > Diagnostic settings > blob > Add diagnostic setting > select the audit category group (or StorageRead, StorageWrite, StorageDelete) and a destination > Save.",
		"cli": "az monitor diagnostic-settings create --name blob-logs --resource <account-id>/blobServices/default --workspace <workspace-id> --logs '[{\"categoryGroup\":\"audit\",\"enabled\":true}]'",
	},
	"related": {"blobServices/default/providers/Microsoft.Insights/diagnosticSettings": "2021-05-01-preview"},
}

applies(r) if {
	slib.has_blob(r)
	not slib.nfs_v3(r)
}

deny contains lib.finding(r, "", {"missing": sort([c | some c in missing]), "settings": slib.setting_names(r, path)}) if {
	some r in input.resources
	applies(r)
	lib.has_related(r, path)
	missing := slib.missing_categories(r, path, slib.storage_log_categories)
	count(missing) > 0
}

indeterminate contains lib.undecided(r, "the blob service's diagnostic settings were not fetched") if {
	some r in input.resources
	applies(r)
	lib.related_missing(r, path)
}
