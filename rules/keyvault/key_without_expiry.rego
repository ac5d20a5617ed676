# Key Vault key with no expiration date (CIS v2.1.0 8.1 / 8.2, v3.0.0 3.3.1 / 3.3.2: "the
# Expiration Date is set for all Keys", in RBAC and in access-policy vaults alike; the key
# document does not say which kind its vault is, and the control is the same). Reads the
# child resource Microsoft.KeyVault/vaults/keys 2023-07-01 `properties.attributes.exp`
# (seconds since 1970); ARM omits `exp` when none is set, so absent fires. A disabled key
# (`attributes.enabled` false) cannot be used and is not judged.
package scanledger.rules.keyvault.key_without_expiry

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-010",
	"title": "Key Vault key has no expiration date",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults/keys"],
	"frameworks": {
		"cis_azure": ["8.1", "8.2"],
		"cis_v3": ["3.3.1", "3.3.2"],
		"nist_csf": ["PR.AC-1", "PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "An enabled key has no expiration date, so it can be used indefinitely and nothing forces its rotation; a key that leaked or outlived its purpose stays valid. Set an expiration date (and a rotation policy that renews the key before it). Reads Microsoft.KeyVault/vaults/keys 2023-07-01 `properties.attributes.exp` and `attributes.enabled`.",
	"remediation": {
		"portal": "Key vault > Objects > Keys > the key > the current version > Set expiration date > Save (or add a rotation policy with an expiry time).",
		"cli": "az keyvault key set-attributes --vault-name <vault> --name <key> --expires <yyyy-mm-ddThh:mm:ssZ>",
	},
}

attributes(r) := lib.prop(r, ["attributes"], null)

deny contains lib.finding(r, "", {"enabled": object.get(attributes(r), "enabled", null), "exp": null}) if {
	some r in input.resources
	is_object(attributes(r))
	not lib.is_false(object.get(attributes(r), "enabled", true))
	object.get(attributes(r), "exp", null) == null
}

indeterminate contains lib.undecided(r, "the key document carries no attributes") if {
	some r in input.resources
	not is_object(attributes(r))
}
