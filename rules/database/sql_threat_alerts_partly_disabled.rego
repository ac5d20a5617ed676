# Microsoft Defender for SQL threat detection on, but with some alert types disabled
# (`disabledAlerts` lists e.g. Sql_Injection, Access_Anomaly; ARM sends [""] for none).
# Checkov CKV_AZURE_25 ("Threat Detection types" set to All).
# Reads the server's security alert policy (Microsoft.Sql/servers/securityAlertPolicies
# 2021-11-01, the same related document as AZ-SQL-009) only where its state is Enabled:
# a policy that is off is AZ-SQL-009's finding.
package scanledger.rules.database.sql_threat_alerts_partly_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-016",
	"title": "SQL server threat detection has alert types turned off",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["DE.CM-1", "DE.AE-2"],
		"iso27001": ["A.8.16"],
	},
	"description": "The server's threat detection policy is on but disables some alert types (for example SQL injection or anomalous access), so those attacks raise no alert. Reads Microsoft.Sql/servers/securityAlertPolicies 2021-11-01 `properties.state` and `properties.disabledAlerts`.",
	"remediation": {
		"portal": "SQL server > Security > Microsoft Defender for Cloud > Configure > Advanced Threat Protection types: All > Save.",
		"cli": "az rest --method put --url \"https://management.azure.com<server-id>/securityAlertPolicies/Default?api-version=2021-11-01\" --body '{\"properties\":{\"state\":\"Enabled\",\"disabledAlerts\":[],\"emailAddresses\":[\"secops@contoso.com\"],\"emailAccountAdmins\":true}}'",
	},
	"related": {"securityAlertPolicies/Default": "2021-11-01"},
}

path := "securityAlertPolicies/Default"

policy(r) := db.obj(object.get(db.obj(lib.related(r, path)), "properties", {})) if lib.has_related(r, path)

enabled(r) if db.lstr(object.get(policy(r), "state", "")) == "enabled"

deny contains lib.finding(r, "", {"disabledAlerts": db.nonblank_strings(object.get(policy(r), "disabledAlerts", []))}) if {
	some r in input.resources
	enabled(r)
	count(db.nonblank_strings(object.get(policy(r), "disabledAlerts", []))) > 0
}

indeterminate contains lib.undecided(r, "the server's security alert policy (securityAlertPolicies/Default) was not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}
