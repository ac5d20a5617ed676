# Cosmos DB account on periodic backup: `backupPolicy.type` not Continuous (absent means
# Periodic, the default). Continuous backup restores to any second in the last 7 or 30
# days, into a new account; periodic backup keeps a few snapshots and restores through
# a support request. Prowler cosmosdb_account_backup_policy_continuous.
package scanledger.rules.database.cosmos_periodic_backup

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-COS-008",
	"title": "Cosmos DB account uses periodic rather than continuous backup",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DocumentDB/databaseAccounts"],
	"frameworks": {
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13"],
	},
	"description": "The account uses periodic backup, so data deleted or corrupted by mistake or by an attacker can only be restored from the last snapshots (hours apart) through a support request, instead of to any point in time. Reads Microsoft.DocumentDB/databaseAccounts 2024-11-15 `properties.backupPolicy.type`.",
	"remediation": {
		"portal": "Azure Cosmos DB account > Settings > Backup & Restore > Backup policy mode: Continuous (7 or 30 days) > Save.",
		"cli": "az cosmosdb update --resource-group <rg> --name <account> --backup-policy-type Continuous --continuous-tier Continuous7Days",
	},
}

deny contains lib.finding(r, "", {"backupPolicy": lib.prop(r, ["backupPolicy", "type"], "(not set: Periodic)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	db.lstr(lib.prop(r, ["backupPolicy", "type"], "Periodic")) != "continuous"
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
