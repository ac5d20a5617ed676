# SQL auditing to a storage account keeps records for 90 days or fewer: CIS v2.1.0 4.1.6 /
# v3.0.0 5.1.6 ask for "greater than 90 days", so 90 itself fires (it passed before
# 2026-11). retentionDays 0 means "keep forever" (documented), so only 1..90 fires; Log
# Analytics and Event Hub destinations have their own retention and are not judged here.
package scanledger.rules.database.sql_audit_retention_short

import data.scanledger.lib
import data.scanledger.lib.database as db
import rego.v1

metadata := {
	"id": "AZ-SQL-002",
	"title": "SQL server audit logs in storage are kept for 90 days or fewer",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Sql/servers"],
	"frameworks": {
		"cis_azure": ["4.1.6"],
		"cis_v3": ["5.1.6"],
		"nist_csf": ["PR.PT-1"],
		"iso27001": ["A.8.15"],
	},
	"description": "Auditing writes to a storage account with a retention of 90 days or fewer (CIS asks for more than 90), so audit records may be deleted before an incident is noticed and investigated.",
	"remediation": {
		"portal": "SQL server > Security > Auditing > Storage > Advanced properties > Retention (days): 91 or more, or 0 for unlimited > Save.",
		"cli": "az sql server audit-policy update --resource-group <rg> --name <server> --blob-storage-target-state Enabled --retention-days 91",
	},
	"related": {"auditingSettings/default": "2021-11-01"},
}

path := "auditingSettings/default"

deny contains lib.finding(r, "", {
	"retentionDays": days,
	"storageEndpoint": p.storageEndpoint,
	"isAzureMonitorTargetEnabled": object.get(p, "isAzureMonitorTargetEnabled", false),
}) if {
	some r in input.resources
	doc := lib.related(r, path)
	is_object(doc)
	p := db.obj(object.get(doc, "properties", {}))
	db.lstr(object.get(p, "state", "")) == "enabled"
	db.nonempty(object.get(p, "storageEndpoint", ""))
	days := db.num(object.get(p, "retentionDays", null))
	days > 0
	days <= 90
}

indeterminate contains lib.undecided(r, "the server's auditing settings (auditingSettings/default) were not fetched") if {
	some r in input.resources
	lib.related_missing(r, path)
}
