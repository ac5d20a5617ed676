# Portal access to the account's data uses the account key by default:
# `defaultToOAuthAuthentication` not true (absent means false). Prowler
# storage_default_to_entra_authorization_enabled. Only where shared key access is
# allowed: otherwise the portal must use Entra ID anyway. Info: it changes the portal's
# default, not what a key holder can do.
package scanledger.rules.storage.oauth_not_default

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-021",
	"title": "Storage account does not default to Microsoft Entra authorization in the portal",
	"severity": "info",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-4"],
		"iso27001": ["A.5.15", "A.8.5"],
	},
	"description": "The account allows shared key access and the Azure portal uses the account key, not the user's Microsoft Entra identity, when people browse its data, so portal access bypasses role assignments and is not attributed to a person in the logs. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.defaultToOAuthAuthentication` and `allowSharedKeyAccess`.",
	"remediation": {
		"portal": "Storage account > Settings > Configuration > Default to Microsoft Entra authorization in the Azure portal: Enabled > Save.",
		"cli": "az storage account update --resource-group <rg> --name <account> --default-to-oauth-authentication true",
	},
}

deny contains lib.finding(r, "", {"defaultToOAuthAuthentication": lib.prop(r, ["defaultToOAuthAuthentication"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	slib.shared_key_allowed(r)
	not lib.is_true(lib.prop(r, ["defaultToOAuthAuthentication"], false))
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
