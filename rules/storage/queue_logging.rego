# Queue read, write and delete requests are not all logged (the older scanner's STOR-004,
# queue part), on an account that holds queues: one whose queueServices/default/queues
# lists none has nothing to log and passes.
# What this checks: Azure Monitor resource logs (diagnostic settings on the queue service,
# Microsoft.Insights/diagnosticSettings 2021-05-01-preview `properties.logs[]`). A category
# (StorageRead, StorageWrite, StorageDelete) counts as logged when a setting with a
# destination enables it by name, through `allLogs`, or through another category group
# (`audit`) that the service's diagnosticSettingsCategories list places it in
# (`properties.categoryGroups`); settings may split the categories between them. Whether
# the storage `audit` group holds StorageRead is not published, so the rule reads that
# list instead of assuming (before 2026-11 it counted `audit` for all three categories);
# if a setting relies on a group and the list was not fetched, the result is
# indeterminate. The mapped CIS controls (v2.1.0 3.5 / v3.0.0 4.12) audit classic
# Storage Analytics logging, a data-plane setting ARM does not return: an account logging
# only through classic Storage Analytics is reported here, and the remediation is the
# Azure Monitor setting Microsoft recommends in its place.
package scanledger.rules.storage.queue_logging

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "queueServices/default/providers/Microsoft.Insights/diagnosticSettings"

children := "queueServices/default/queues"

metadata := {
	"id": "AZ-STG-009",
	"title": "Queue service read, write and delete requests are not logged",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.5"],
		"cis_v3": ["4.12"],
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "The account holds queues, but no Azure Monitor diagnostic setting on the queue service sends all of StorageRead, StorageWrite and StorageDelete to a destination (by name, through allLogs, or through a category group such as audit that the service's diagnosticSettingsCategories list says holds them), so access to queue data cannot be investigated after an incident. Reads Microsoft.Insights/diagnosticSettings and diagnosticSettingsCategories 2021-05-01-preview on {account}/queueServices/default (`properties.logs[]`, `properties.categoryGroups`). The CIS control audits classic Storage Analytics logging, which ARM does not return; this rule checks the Azure Monitor resource logs Microsoft recommends instead, so an account logging only through classic Storage Analytics is reported.",
	"remediation": {
		"portal": "Storage account > Monitoring > Diagnostic settings > queue > Add diagnostic setting > select the allLogs category group (or StorageRead, StorageWrite and StorageDelete) and a destination > Save.",
		"cli": "az monitor diagnostic-settings create --name queue-logs --resource <account-id>/queueServices/default --workspace <workspace-id> --logs '[{\"categoryGroup\":\"allLogs\",\"enabled\":true}]'",
	},
	"related": {
		"queueServices/default/providers/Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
		"queueServices/default/providers/Microsoft.Insights/diagnosticSettingsCategories": "2021-05-01-preview",
		"queueServices/default/queues": "2023-05-01",
	},
}

unlogged(r) := missing if {
	lib.has_related(r, path)
	missing := slib.unsent_categories(r, path, slib.storage_log_categories)
	count(missing) > 0
}

# The queues the account holds (the list may come as an array or a list page).
items(r) := slib.arr(v) if {
	v := lib.related(r, children)
	not is_object(v)
}

items(r) := slib.arr(object.get(v, "value", [])) if {
	v := lib.related(r, children)
	is_object(v)
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	slib.queue_table(r)
	unlogged(r) # a bare call first: see docs/rule-authoring.md (bytecode)
	missing := unlogged(r)
	not slib.groups_unknown(r, path)
	lib.has_related(r, children)
	count(items(r)) > 0
	details := {
		"missing": sort([c | some c in missing]),
		"settings": slib.setting_names(r, path),
		"queues": count(items(r)),
	}
}

indeterminate contains lib.undecided(r, "the queue service's diagnostic settings were not fetched") if {
	some r in input.resources
	slib.queue_table(r)
	lib.related_missing(r, path)
}

indeterminate contains lib.undecided(r, "a diagnostic setting sends a category group whose members (diagnosticSettingsCategories) were not fetched") if {
	some r in input.resources
	slib.queue_table(r)
	unlogged(r)
	slib.groups_unknown(r, path)
	lib.has_related(r, children)
	count(items(r)) > 0
}

indeterminate contains lib.undecided(r, "queue logging is off but the list of queues was not fetched") if {
	some r in input.resources
	slib.queue_table(r)
	unlogged(r)
	lib.related_missing(r, children)
}
