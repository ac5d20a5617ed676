# MySQL flexible server without a high-availability standby: `highAvailability.mode`
# Disabled (absent means Disabled) on a General Purpose or Business Critical server
# (Burstable cannot have one). Read replicas are not judged. Info, like AZ-PG-008:
# availability rather than security. Prowler mysql_flexible_server_high_availability_enabled.
package scanledger.rules.database.mysql_high_availability_disabled

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-MY-011",
	"title": "MySQL flexible server has no high-availability standby",
	"severity": "info",
	"category": "database",
	"resource_types": ["Microsoft.DBforMySQL/flexibleServers"],
	"frameworks": {
		"nist_csf": ["PR.PT-5"],
		"iso27001": ["A.8.14"],
	},
	"description": "High availability is off, so a zone or host failure takes the server down until it is recovered. Reads Microsoft.DBforMySQL/flexibleServers 2023-12-30 `properties.highAvailability.mode` and `sku.tier`.",
	"remediation": {
		"portal": "Azure Database for MySQL flexible server > Settings > High availability > Enable high availability (zone-redundant) > Save.",
		"cli": "az mysql flexible-server update --resource-group <rg> --name <server> --high-availability ZoneRedundant",
	},
}

deny contains lib.finding(r, "", {"highAvailability": lib.prop(r, ["highAvailability", "mode"], "(not set: Disabled)"), "tier": object.get(r, ["sku", "tier"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	db.lstr(object.get(r, ["sku", "tier"], "")) in {"generalpurpose", "businesscritical", "memoryoptimized"}
	not db.replica(r)
	db.lstr(lib.prop(r, ["highAvailability", "mode"], "Disabled")) == "disabled"
}

indeterminate contains lib.undecided(r, "the server document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
