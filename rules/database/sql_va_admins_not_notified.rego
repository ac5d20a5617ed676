# Classic SQL vulnerability assessment that does not e-mail the subscription's
# administrators and owners (`recurringScans.emailSubscriptionAdmins` not true; CIS
# v2.0.0 4.2.5). Info: the reports may well reach the right people by address.
# Judged only where the classic configuration is what applies: a storage container set and
# the express configuration known to be off (express scans run weekly by themselves and
# report to Defender for Cloud). Servers with no assessment at all are AZ-SQL-010's.
package scanledger.rules.database.sql_va_admins_not_notified

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-013",
	"title": "SQL server vulnerability assessment does not notify subscription admins",
	"severity": "info",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["ID.RA-1", "DE.CM-8"],
		"iso27001": ["A.8.8"],
	},
	"description": "The classic vulnerability assessment's scan reports are not also sent to the subscription's administrators and owners (Also send email notification to admins and subscription owners is off). Reads Microsoft.Sql/servers/vulnerabilityAssessments 2021-11-01 `properties.recurringScans` and sqlVulnerabilityAssessments 2023-08-01 `properties.state`.",
	"remediation": {
		"portal": "SQL server > Security > Microsoft Defender for Cloud > Configure > Vulnerability assessment settings > Also send email notification to admins and subscription owners: On > Save.",
		"cli": "az sql server va-setting update --resource-group <rg> --server <server> --email-subscription-admins true",
	},
	"related": {
		"vulnerabilityAssessments/default": "2021-11-01",
		"sqlVulnerabilityAssessments/default": "2023-08-01",
	},
}

deny contains lib.finding(r, "", {"emailSubscriptionAdmins": object.get(db.va_classic(r), ["recurringScans", "emailSubscriptionAdmins"], null)}) if {
	some r in input.resources
	db.va_classic_only(r)
	not lib.is_true(object.get(db.va_classic(r), ["recurringScans", "emailSubscriptionAdmins"], false))
}

indeterminate contains lib.undecided(r, "the server's express vulnerability assessment setting was not fetched") if {
	some r in input.resources
	db.va_classic_on(r)
	lib.related_missing(r, db.va_express_path)
}
