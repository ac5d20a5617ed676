# Microsoft Defender for SQL (advanced threat protection) not enabled on the server itself:
# the server security alert policy `securityAlertPolicies/Default` has a state other than
# Enabled, or none exists (404).
# Limitation: the subscription-level Defender for Azure SQL plan (Microsoft.Security/pricings
# SqlServers) protects every server whatever this server-level setting says, and a rule here
# only sees SQL servers. Hence severity low and a description that says so; the subscription
# plan itself is judged by the defender rules.
package scanledger.rules.database.sql_defender_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-009",
	"title": "Microsoft Defender for SQL is not enabled at the SQL server level",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "DE.CM-7"],
		"iso27001": ["A.8.16"],
	},
	"description": "Advanced threat protection is not enabled on the server, so unless the subscription-level Defender for Azure SQL plan covers it, SQL injection, anomalous logins, brute force and data exfiltration attempts raise no security alerts. If that plan is on for the subscription (checked by AZ-DEF-003), the server is protected and this finding can be dismissed.",
	"remediation": {
		"portal": "SQL server > Security > Microsoft Defender for Cloud > Enable Microsoft Defender for SQL (or enable the Defender for Azure SQL plan on the subscription).",
		"cli": "az sql server advanced-threat-protection-setting update --resource-group <rg> --name <server> --state Enabled",
	},
	"related": {"securityAlertPolicies/Default": "2021-11-01"},
}

path := "securityAlertPolicies/Default"

deny contains lib.finding(r, "", {"state": s}) if {
	some r in input.resources
	doc := lib.related(r, path)
	is_object(doc)
	s := db.str(object.get(db.obj(object.get(doc, "properties", {})), "state", ""))
	s != ""
	lower(s) != "enabled"
}

deny contains lib.finding(r, "", {"state": "(no security alert policy)"}) if {
	some r in input.resources
	lib.has_related(r, path)
	lib.related(r, path) == null
}

indeterminate contains lib.undecided(r, "the server's security alert policy (securityAlertPolicies/Default) was not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}

indeterminate contains lib.undecided(r, "the server's security alert policy reports no state") if {
	some r in input.resources
	doc := lib.related(r, path)
	is_object(doc)
	db.str(object.get(db.obj(object.get(doc, "properties", {})), "state", "")) == ""
}
