# PostgreSQL flexible server backups kept only in its own region. geoRedundantBackup
# defaults to Disabled, so absent fires. Read replicas are skipped (backups belong to the
# primary). The setting is chosen at creation: fixing it means a restore to a new server.
package scanledger.rules.database.pg_geo_redundant_backup_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-005",
	"title": "PostgreSQL flexible server backups are not geo-redundant",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.IP-4"],
		"iso27001": ["A.8.13"],
	},
	"description": "Backups are stored only in the server's region, so a regional outage or disaster can make the server unrecoverable (geo-restore needs geo-redundant backup).",
	"remediation": {
		"portal": "Geo-redundant backup can only be chosen when a server is created: Azure Database for PostgreSQL flexible server > Overview > Restore to a new server with Backup redundancy 'Geo-redundant', then move clients to it.",
		"cli": "az postgres flexible-server restore --resource-group <rg> --name <new-server> --source-server <server> --geo-redundant-backup Enabled",
	},
}

deny contains lib.finding(r, "", {"geoRedundantBackup": lib.prop(r, ["backup", "geoRedundantBackup"], "(not set: Disabled)")}) if {
	some r in input.resources
	not db.replica(r)
	db.lstr(lib.prop(r, ["backup", "geoRedundantBackup"], "Disabled")) == "disabled"
}
