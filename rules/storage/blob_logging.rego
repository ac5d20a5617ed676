# Blob read, write and delete requests are not all logged (the older scanner's STOR-004,
# blob part). Accounts with NFS 3.0 enabled do not support Azure Monitor blob logs and are
# skipped.
# What this checks: Azure Monitor resource logs (diagnostic settings on the blob service,
# Microsoft.Insights/diagnosticSettings 2021-05-01-preview `properties.logs[]`). A category
# (StorageRead, StorageWrite, StorageDelete) counts as logged when a setting with a
# destination enables it by name, through `allLogs`, or through another category group
# (`audit`) that the service's diagnosticSettingsCategories list places it in
# (`properties.categoryGroups`); settings may split the categories between them. Whether
# the storage `audit` group holds StorageRead is not published, so the rule reads that
# list instead of assuming (before 2026-11 it counted `audit` for all three categories);
# if a setting relies on a group and the list was not fetched, the result is
# indeterminate. The mapped CIS controls (v2.1.0 3.13 / v3.0.0 4.13) audit classic
# Storage Analytics logging, a data-plane setting ARM does not return: an account logging
# only through classic Storage Analytics is reported here, and the remediation is the
# Azure Monitor setting Microsoft recommends in its place.
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
	"description": "No Azure Monitor diagnostic setting on the blob service sends all of StorageRead, StorageWrite and StorageDelete to a destination (by name, through allLogs, or through a category group such as audit that the service's diagnosticSettingsCategories list says holds them), so access to blob data cannot be investigated after an incident. Reads Microsoft.Insights/diagnosticSettings and diagnosticSettingsCategories 2021-05-01-preview on {account}/blobServices/default (`properties.logs[]`, `properties.categoryGroups`). The CIS control audits classic Storage Analytics logging, which ARM does not return; this rule checks the Azure Monitor resource logs Microsoft recommends instead, so an account logging only through classic Storage Analytics is reported.",
	"remediation": {
		"portal": "Storage account > Monitoring > Diagnostic settings > blob > Add diagnostic setting > select the allLogs category group (or StorageRead, StorageWrite and StorageDelete) and a destination > Save.",
		"cli": "az monitor diagnostic-settings create --name blob-logs --resource <account-id>/blobServices/default --workspace <workspace-id> --logs '[{\"categoryGroup\":\"allLogs\",\"enabled\":true}]'",
	},
	"related": {
		"blobServices/default/providers/Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
		"blobServices/default/providers/Microsoft.Insights/diagnosticSettingsCategories": "2021-05-01-preview",
	},
}

applies(r) if {
	slib.has_blob(r)
	not slib.nfs_v3(r)
}

deny contains lib.finding(r, "", {"missing": sort([c | some c in missing]), "settings": slib.setting_names(r, path)}) if {
	some r in input.resources
	applies(r)
	lib.has_related(r, path)
	missing := slib.unsent_categories(r, path, slib.storage_log_categories)
	count(missing) > 0
	not slib.groups_unknown(r, path)
}

indeterminate contains lib.undecided(r, "a diagnostic setting sends a category group whose members (diagnosticSettingsCategories) were not fetched") if {
	some r in input.resources
	applies(r)
	lib.has_related(r, path)
	count(slib.unsent_categories(r, path, slib.storage_log_categories)) > 0
	slib.groups_unknown(r, path)
}

indeterminate contains lib.undecided(r, "the blob service's diagnostic settings were not fetched") if {
	some r in input.resources
	applies(r)
	lib.related_missing(r, path)
}
