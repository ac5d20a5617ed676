# Azure AI Search service that accepts API keys: `disableLocalAuth` not true (absent means
# false). With keys allowed, a copied admin key grants full control of the service with
# no identity attached; with Entra ID only, access follows role assignments and is
# attributable. `authOptions` apiKeyOnly or aadOrApiKey both still accept keys.
package scanledger.rules.database.search_api_keys_enabled

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-SRCH-002",
	"title": "AI Search service accepts API keys",
	"severity": "low",
	"category": "database",
	"resource_types": ["Microsoft.Search/searchServices"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.17", "A.8.5"],
	},
	"description": "The search service accepts API keys (local authentication), so anyone holding an admin key controls its indexes, and calls made with keys are not tied to an identity. Reads Microsoft.Search/searchServices 2023-11-01 `properties.disableLocalAuth`.",
	"remediation": {
		"portal": "AI Search service > Settings > Keys > API access control: Role-based access control (after clients use Entra ID) > Save.",
		"cli": "az search service update --resource-group <rg> --name <service> --disable-local-auth true",
	},
}

deny contains lib.finding(r, "", {"disableLocalAuth": lib.prop(r, ["disableLocalAuth"], null), "authOptions": lib.prop(r, ["authOptions"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not lib.is_true(lib.prop(r, ["disableLocalAuth"], false))
}

indeterminate contains lib.undecided(r, "the document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
