# PostgreSQL flexible server without Microsoft Entra authentication: `authConfig
# .activeDirectoryAuth` not Enabled (absent means Disabled, the default), so every login
# is a password known to the database. Prowler
# postgresql_flexible_server_entra_id_authentication_enabled.
package scanledger.rules.database.pg_entra_auth_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-013",
	"title": "PostgreSQL flexible server does not accept Microsoft Entra authentication",
	"severity": "medium",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.16", "A.8.5"],
	},
	"description": "Microsoft Entra authentication is off, so all logins are PostgreSQL passwords: no central revocation, conditional access or MFA, and credentials that live in connection strings. Reads Microsoft.DBforPostgreSQL/flexibleServers 2022-12-01 `properties.authConfig.activeDirectoryAuth`.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Security > Authentication > Microsoft Entra authentication (or PostgreSQL and Microsoft Entra authentication) > add an Entra administrator > Save.",
		"cli": "az postgres flexible-server update --resource-group <rg> --name <server> --microsoft-entra-auth Enabled",
	},
}

deny contains lib.finding(r, "", {"authConfig": lib.prop(r, ["authConfig"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	db.lstr(lib.prop(r, ["authConfig", "activeDirectoryAuth"], "Disabled")) != "enabled"
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
