# Azure SQL server still accepting SQL-authentication logins: Microsoft Entra-only
# authentication is off. Read from the inline `administrators` object or the related
# `administrators` list (whose entries carry azureADOnlyAuthentication). A server without
# any Entra admin cannot be Entra-only, so it fires too.
package scanledger.rules.database.sql_entra_only_auth_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-008",
	"title": "SQL server allows SQL authentication (Entra-only authentication is off)",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.8.5"],
	},
	"description": "Microsoft Entra-only authentication is not enforced, so the server admin login and other SQL logins authenticate with passwords that can be brute-forced or leaked and bypass MFA.",
	"remediation": {
		"portal": "SQL server > Settings > Microsoft Entra ID > Support only Microsoft Entra authentication for this server > Save.",
		"cli": "az sql server ad-only-auth enable --resource-group <rg> --name <server>",
	},
	"related": {"administrators": "2021-11-01"},
}

flags(r) := {f | some a in db.sql_entra_admins(r); f := object.get(a, "azureADOnlyAuthentication", null); f != null}

enforced(r) if {
	some f in flags(r)
	lib.is_true(f)
}

deny contains lib.finding(r, "", {"azureADOnlyAuthentication": false, "entraAdmin": "none"}) if {
	some r in input.resources
	lib.has_related(r, "administrators")
	count(db.sql_entra_admins(r)) == 0
}

deny contains lib.finding(r, "", {"azureADOnlyAuthentication": false}) if {
	some r in input.resources
	not enforced(r)
	some f in flags(r)
	lib.is_false(f)
}

indeterminate contains lib.undecided(r, "the server's Entra administrators were not fetched") if {
	some r in input.resources
	not db.sql_admins_known(r)
}

indeterminate contains lib.undecided(r, "the Entra administrator does not report azureADOnlyAuthentication") if {
	some r in input.resources
	count(db.sql_entra_admins(r)) > 0
	count(flags(r)) == 0
}
