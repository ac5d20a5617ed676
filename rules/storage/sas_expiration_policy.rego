# Storage SAS tokens not limited to one hour (CIS v2.1.0 3.6 / v3.0.0 4.5 "Shared Access
# Signature Tokens Expire Within an Hour"): no `sasPolicy`, or its `sasExpirationPeriod`
# (".NET TimeSpan" d.hh:mm:ss, e.g. 1.00:00:00) exceeds 1 hour. The policy is the only
# account setting that bounds SAS lifetimes; a token's own expiry is not visible in ARM.
# With expirationAction Log (the default) a longer token still works but is logged. Only
# where shared key access is allowed (account SAS and service SAS are signed with keys).
package scanledger.rules.storage.sas_expiration_policy

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-024",
	"title": "Storage account SAS expiration policy is missing or longer than one hour",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.6"],
		"cis_v3": ["4.5"],
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17", "A.8.5"],
	},
	"description": "Shared key access is allowed and the account either has no SAS expiration policy or allows SAS tokens to live longer than one hour, so a leaked token stays usable for long. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.sasPolicy.sasExpirationPeriod` (d.hh:mm:ss) and `allowSharedKeyAccess`.",
	"remediation": {
		"portal": "Storage account > Settings > Configuration > Allow recommended upper limit for shared access signature (SAS) expiry interval: Enabled, 0 days 1 hour > Save.",
		"cli": "az storage account update --resource-group <rg> --name <account> --sas-expiration-period 0.01:00:00",
	},
}

# seconds(p): the period in seconds, for "d.hh:mm:ss" or "hh:mm:ss"; undefined otherwise.
seconds(p) := s if {
	is_string(p)
	regex.match(`^[0-9]+[.][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}$`, p)
	parts := split(p, ".")
	hms := split(parts[1], ":")
	s := (((num(parts[0]) * 24 + num(hms[0])) * 60 + num(hms[1])) * 60) + num(hms[2])
}

seconds(p) := s if {
	is_string(p)
	regex.match(`^[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}$`, p)
	hms := split(p, ":")
	s := ((num(hms[0]) * 60 + num(hms[1])) * 60) + num(hms[2])
}

# num(s): a string of digits as a number; leading zeros are not a JSON number, so strip them.
num(s) := 0 if trim_left(s, "0") == ""

num(s) := to_number(trim_left(s, "0")) if trim_left(s, "0") != ""

period(r) := lib.prop(r, ["sasPolicy", "sasExpirationPeriod"], null)

within_an_hour(r) if seconds(period(r)) <= 3600

deny contains lib.finding(r, "", {"sasPolicy": lib.prop(r, ["sasPolicy"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	slib.shared_key_allowed(r)
	not within_an_hour(r)
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
