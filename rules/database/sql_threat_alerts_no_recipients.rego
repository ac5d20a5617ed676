# Microsoft Defender for SQL threat detection on with no e-mail recipients in the policy
# (`emailAddresses` empty, ARM sends [""]) and `emailAccountAdmins` off. Checkov
# CKV_AZURE_26 / 27. Defender for Cloud security contacts (AZ-DEF-012) may still be
# e-mailed, so this is low.
# Reads the server's security alert policy (Microsoft.Sql/servers/securityAlertPolicies
# 2021-11-01, the same related document as AZ-SQL-009) only where its state is Enabled:
# a policy that is off is AZ-SQL-009's finding.
package scanledger.rules.database.sql_threat_alerts_no_recipients

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-017",
	"title": "SQL server threat detection alerts go to no e-mail address",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["DE.DP-4", "RS.CO-2"],
		"iso27001": ["A.5.25"],
	},
	"description": "The server's threat detection policy e-mails its alerts to no address and not to the subscription's administrators, so an alert is only seen by whoever watches Defender for Cloud. Reads Microsoft.Sql/servers/securityAlertPolicies 2021-11-01 `properties.emailAddresses` and `properties.emailAccountAdmins`.",
	"remediation": {
		"portal": "SQL server > Security > Microsoft Defender for Cloud > Configure > Send alerts to: add addresses (and Also send email notification to admins and subscription owners) > Save.",
		"cli": "az rest --method put --url \"https://management.azure.com<server-id>/securityAlertPolicies/Default?api-version=2021-11-01\" --body '{\"properties\":{\"state\":\"Enabled\",\"disabledAlerts\":[],\"emailAddresses\":[\"secops@contoso.com\"],\"emailAccountAdmins\":true}}'",
	},
	"related": {"securityAlertPolicies/Default": "2021-11-01"},
}

path := "securityAlertPolicies/Default"

policy(r) := db.obj(object.get(db.obj(lib.related(r, path)), "properties", {})) if lib.has_related(r, path)

enabled(r) if db.lstr(object.get(policy(r), "state", "")) == "enabled"

deny contains lib.finding(r, "", {
	"emailAddresses": object.get(policy(r), "emailAddresses", null),
	"emailAccountAdmins": object.get(policy(r), "emailAccountAdmins", null),
}) if {
	some r in input.resources
	enabled(r)
	count(db.nonblank_strings(object.get(policy(r), "emailAddresses", []))) == 0
	not lib.is_true(object.get(policy(r), "emailAccountAdmins", false))
}

indeterminate contains lib.undecided(r, "the server's security alert policy (securityAlertPolicies/Default) was not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}
