# No lifecycle management policy (the older scanner's STOR-003). The policy is the child
# `managementPolicies/default`: ARM answers 404 (related null) when the account has none.
# A policy whose rules are all disabled counts as none. Lifecycle management exists only
# for block-blob accounts (general-purpose v2, BlobStorage, BlockBlobStorage).
package scanledger.rules.storage.lifecycle_policy

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "managementPolicies/default"

metadata := {
	"id": "AZ-STG-007",
	"title": "Storage account has no lifecycle management policy",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.IP-6"],
		"iso27001": ["A.8.10"],
	},
	"description": "No enabled lifecycle management rule deletes or tiers blobs, so data, old versions and snapshots are kept indefinitely instead of following a retention policy, which grows both cost and the amount of data exposed in a breach.",
	"remediation": {
		"portal": "Storage account > Data management > Lifecycle management > Add a rule (e.g. delete or archive blobs, previous versions and snapshots after the retention period).",
		"cli": "az storage account management-policy create --account-name <account> --resource-group <rg> --policy @policy.json",
	},
	"related": {"managementPolicies/default": "2023-05-01"},
}

enabled_rules(doc) := [rule.name |
	some rule in slib.arr(object.get(doc, ["properties", "policy", "rules"], []))
	not lib.is_false(object.get(rule, "enabled", true))
]

deny contains lib.finding(r, "", {"managementPolicy": "none"}) if {
	some r in input.resources
	slib.block_blob(r)
	lib.has_related(r, path)
	lib.related(r, path) == null
}

deny contains lib.finding(r, "", {"managementPolicy": "no enabled rules"}) if {
	some r in input.resources
	slib.block_blob(r)
	lib.has_related(r, path)
	doc := lib.related(r, path)
	doc != null
	count(enabled_rules(doc)) == 0
}

indeterminate contains lib.undecided(r, "the lifecycle management policy (managementPolicies/default) was not fetched") if {
	some r in input.resources
	slib.block_blob(r)
	lib.related_missing(r, path)
}
