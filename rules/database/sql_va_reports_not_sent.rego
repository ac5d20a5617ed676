# Classic SQL vulnerability assessment whose scan reports reach no one: no address in
# `recurringScans.emails` (ARM sends [""] for none) and `emailSubscriptionAdmins` off
# (CIS v2.0.0 4.2.4).
# Judged only where the classic configuration is what applies: a storage container set and
# the express configuration known to be off (express scans run weekly by themselves and
# report to Defender for Cloud). Servers with no assessment at all are AZ-SQL-010's.
package scanledger.rules.database.sql_va_reports_not_sent

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-012",
	"title": "SQL server vulnerability assessment sends its scan reports to no one",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["ID.RA-1", "DE.CM-8"],
		"iso27001": ["A.8.8"],
	},
	"description": "The classic vulnerability assessment runs, but its scan reports go to no e-mail address and not to the subscription's administrators, so findings wait until someone looks in the portal. Reads Microsoft.Sql/servers/vulnerabilityAssessments 2021-11-01 `properties.recurringScans` and sqlVulnerabilityAssessments 2023-08-01 `properties.state`.",
	"remediation": {
		"portal": "SQL server > Security > Microsoft Defender for Cloud > Configure > Vulnerability assessment settings > Send scan reports to: add addresses > Save.",
		"cli": "az sql server va-setting update --resource-group <rg> --server <server> --recurring-scans-emails secops@contoso.com",
	},
	"related": {
		"vulnerabilityAssessments/default": "2021-11-01",
		"sqlVulnerabilityAssessments/default": "2023-08-01",
	},
}

deny contains lib.finding(r, "", {"recurringScans": object.get(db.va_classic(r), "recurringScans", null)}) if {
	some r in input.resources
	db.va_classic_only(r)
	count(db.nonblank_strings(object.get(db.va_classic(r), ["recurringScans", "emails"], []))) == 0
	not lib.is_true(object.get(db.va_classic(r), ["recurringScans", "emailSubscriptionAdmins"], false))
}

indeterminate contains lib.undecided(r, "the server's express vulnerability assessment setting was not fetched") if {
	some r in input.resources
	db.va_classic_on(r)
	lib.related_missing(r, db.va_express_path)
}
