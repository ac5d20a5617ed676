# Data kept in one region only. Premium SKUs and NFS 3.0 accounts cannot be geo-redundant
# at all, so they are not flagged (no remediation exists short of a different design).
package scanledger.rules.storage.geo_redundancy

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-006",
	"title": "Storage account is not geo-redundant",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.PT-5", "PR.IP-4"],
		"iso27001": ["A.8.14"],
	},
	"description": "The account replicates only within one region (LRS or ZRS), so a regional outage or disaster can make its data unavailable or lose it. GRS, RA-GRS, GZRS and RA-GZRS keep a copy in the paired region.",
	"remediation": {
		"portal": "Storage account > Data management > Redundancy > choose GRS or GZRS (read-access variants if readers need the secondary) > Save.",
		"cli": "az storage account update --name <account> --resource-group <rg> --sku Standard_GRS",
	},
}

geo_skus := {"standard_grs", "standard_ragrs", "standard_gzrs", "standard_ragzrs"}

deny contains lib.finding(r, "", {"sku": object.get(r, ["sku", "name"], null)}) if {
	some r in input.resources
	sku := slib.sku_name(r)
	sku != ""
	not slib.premium(r)
	not slib.nfs_v3(r)
	not sku in geo_skus
}

indeterminate contains lib.undecided(r, "the resource has no sku.name") if {
	some r in input.resources
	slib.sku_name(r) == ""
}
