# PostgreSQL flexible server without high availability, on a tier that offers it.
# Burstable servers cannot have HA and read replicas have none of their own, so both are
# skipped. highAvailability.mode defaults to Disabled, so absent fires. Informational:
# many non-production servers rightly run without a standby.
package scanledger.rules.database.pg_high_availability_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-PG-008",
	"title": "PostgreSQL flexible server has no high-availability standby",
	"severity": "info",
	"category": "database",
	"resource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.PT-5"],
		"iso27001": ["A.8.14"],
	},
	"description": "A General Purpose or Memory Optimized server runs without a zone-redundant or same-zone standby, so a zone or host failure means downtime until the server is recovered.",
	"remediation": {
		"portal": "Azure Database for PostgreSQL flexible server > Settings > High availability > Enable high availability: Zone redundant (or Same zone) > Save.",
		"cli": "az postgres flexible-server update --resource-group <rg> --name <server> --high-availability ZoneRedundant",
	},
}

deny contains lib.finding(r, "", {"highAvailability": lib.prop(r, ["highAvailability", "mode"], "(not set: Disabled)"), "tier": r.sku.tier}) if {
	some r in input.resources
	db.lstr(object.get(r, ["sku", "tier"], "")) in {"generalpurpose", "memoryoptimized"}
	not db.replica(r)
	db.lstr(lib.prop(r, ["highAvailability", "mode"], "Disabled")) == "disabled"
}
