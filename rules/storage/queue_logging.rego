# Queue read/write/delete requests are not logged (the older scanner's STOR-004,
# queue part), on an account that actually holds queues. Reads the queue service's Azure
# Monitor diagnostic settings (category by name, or the `allLogs` / `audit` group, with a
# destination). An account with no queues (queueServices/default/queues lists none) has
# nothing to log and passes. Classic Storage Analytics logging is configured on the data
# plane and is not read.
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
	"description": "The account holds queues but no diagnostic setting on its queue service sends the StorageRead, StorageWrite and StorageDelete logs (or the audit / allLogs category group) anywhere, so access to queue data cannot be investigated after an incident.",
	"remediation": {
		"portal": "Storage account > Monitoring > Diagnostic settings > queue > Add diagnostic setting > select the audit category group (or StorageRead, StorageWrite, StorageDelete) and a destination > Save.",
		"cli": "az monitor diagnostic-settings create --name queue-logs --resource <account-id>/queueServices/default --workspace <workspace-id> --logs '[{\"categoryGroup\":\"audit\",\"enabled\":true}]'",
	},
	"related": {
		"queueServices/default/providers/Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
		"queueServices/default/queues": "2023-05-01",
	},
}

unlogged(r) := missing if {
	lib.has_related(r, path)
	missing := slib.missing_categories(r, path, slib.storage_log_categories)
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

indeterminate contains lib.undecided(r, "queue logging is off but the list of queues was not fetched") if {
	some r in input.resources
	slib.queue_table(r)
	unlogged(r)
	lib.related_missing(r, children)
}
