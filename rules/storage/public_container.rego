# A blob container is readable anonymously: its publicAccess is Blob or Container while the
# account does not disallow anonymous access (an explicit allowBlobPublicAccess false
# overrides every container's setting). Containers come from the ARM list
# `blobServices/default/containers` (each item's properties.publicAccess: None/Blob/Container).
package scanledger.rules.storage.public_container

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

path := "blobServices/default/containers"

metadata := {
	"id": "AZ-STG-015",
	"title": "Blob container is readable anonymously",
	"severity": "high",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.AC-3", "PR.DS-5"],
		"iso27001": ["A.8.3"],
	},
	"description": "The container's access level is Blob or Container and the account permits anonymous access, so anyone who knows or guesses its URL can read its blobs (and, at Container level, list them) without any credential.",
	"remediation": {
		"portal": "Storage account > Data storage > Containers > select the container > Change access level: Private (no anonymous access); or disable 'Allow Blob anonymous access' on the account.",
		"cli": "az storage container-rm update --storage-account <account> --resource-group <rg> --name <container> --public-access off",
	},
	"related": {"blobServices/default/containers": "2023-05-01"},
}

account_allows(r) if {
	slib.has_blob(r)
	not lib.is_false(lib.prop(r, ["allowBlobPublicAccess"], null))
}

containers(r) := slib.arr(v) if {
	v := lib.related(r, path)
	not is_object(v)
}

containers(r) := slib.arr(object.get(v, "value", [])) if {
	v := lib.related(r, path)
	is_object(v)
}

deny contains lib.finding(r, name, details) if {
	some r in input.resources
	account_allows(r)
	lib.has_related(r, path)
	some c in containers(r)
	level := object.get(c, ["properties", "publicAccess"], null)
	slib.lc(level) in {"blob", "container"}
	name := object.get(c, "name", "")
	details := {
		"container": name,
		"publicAccess": level,
		"allowBlobPublicAccess": lib.prop(r, ["allowBlobPublicAccess"], null),
		"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
	}
}

indeterminate contains lib.undecided(r, "the account allows anonymous access but its containers were not listed") if {
	some r in input.resources
	account_allows(r)
	lib.related_missing(r, path)
}
