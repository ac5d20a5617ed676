# Storage account keys with no expiration period ("key rotation reminders", CIS v2.1.0 3.3
# / v3.0.0 4.3): `keyPolicy.keyExpirationPeriodInDays` absent or not a positive number.
# Only where shared key access is allowed (AZ-STG-006 reports that it is): with
# allowSharedKeyAccess false the keys authorize nothing.
package scanledger.rules.storage.key_expiration_policy_missing

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-020",
	"title": "Storage account has no access key expiration policy",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.3"],
		"cis_v3": ["4.3"],
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17", "A.8.24"],
	},
	"description": "Shared key access is allowed but the account has no key expiration policy (keyPolicy.keyExpirationPeriodInDays), so nothing reminds owners to rotate the account keys and Azure Policy cannot flag keys past their rotation date. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.keyPolicy.keyExpirationPeriodInDays` and `allowSharedKeyAccess`.",
	"remediation": {
		"portal": "Storage account > Security + networking > Access keys > Set rotation reminder > Enable key rotation reminders, remind every 90 days > Save.",
		"cli": "az storage account update --resource-group <rg> --name <account> --key-exp-days 90",
	},
}

period(r) := lib.prop(r, ["keyPolicy", "keyExpirationPeriodInDays"], null)

deny contains lib.finding(r, "", {"keyPolicy": lib.prop(r, ["keyPolicy"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	slib.shared_key_allowed(r)
	not positive(period(r))
}

positive(x) if {
	is_number(x)
	x > 0
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
