# MySQL flexible server without geo-redundant backup: `backup.geoRedundantBackup` not
# Enabled (absent means Disabled). Can only be chosen at creation. Read replicas are the
# primary's concern and not judged. Prowler mysql_flexible_server_geo_redundant_backup_enabled.
package scanledger.rules.database.mysql_geo_redundant_backup_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-MY-010",
	"title": "MySQL flexible server backups are not geo-redundant",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13", "A.8.14"],
	},
	"description": "Backups are kept only in the server's region, so a regional outage or disaster leaves no copy to restore from elsewhere. Reads Microsoft.DBforMySQL/flexibleServers 2023-12-30 `properties.backup.geoRedundantBackup`.",
	"remediation": {
		"portal": "Geo-redundant backup is chosen at creation: create a server with Compute + storage > Backup redundancy: Geo-redundant, and restore or migrate into it.",
		"cli": "az mysql flexible-server create --resource-group <rg> --name <new-server> --geo-redundant-backup Enabled",
	},
}

deny contains lib.finding(r, "", {"geoRedundantBackup": lib.prop(r, ["backup", "geoRedundantBackup"], "(not set: Disabled)")}) if {
	some r in input.resources
	not lib.no_properties(r)
	not db.replica(r)
	db.lstr(lib.prop(r, ["backup", "geoRedundantBackup"], "Disabled")) != "enabled"
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
