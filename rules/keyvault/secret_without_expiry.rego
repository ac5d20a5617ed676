# Key Vault secret with no expiration date (CIS v2.1.0 8.3 / 8.4, v3.0.0 3.3.3 / 3.3.4: "the
# Expiration Date is set for all Secrets", in RBAC and access-policy vaults alike). Reads the
# child resource Microsoft.KeyVault/vaults/secrets 2023-07-01 `properties.attributes.exp`
# (seconds since 1970; ARM never returns the secret's value); absent fires. A disabled
# secret is not judged.
package scanledger.rules.keyvault.secret_without_expiry

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-011",
	"title": "Key Vault secret has no expiration date",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults/secrets"],
	"frameworks": {
		"cis_azure": ["8.3", "8.4"],
		"cis_v3": ["3.3.3", "3.3.4"],
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17", "A.8.24"],
	},
	"description": "An enabled secret has no expiration date, so a password, connection string or token stored in it is never forced to be replaced and stays valid after it leaks. Reads Microsoft.KeyVault/vaults/secrets 2023-07-01 `properties.attributes.exp` and `attributes.enabled`.",
	"remediation": {
		"portal": "Key vault > Objects > Secrets > the secret > the current version > Set expiration date > Save.",
		"cli": "az keyvault secret set-attributes --vault-name <vault> --name <secret> --expires <yyyy-mm-ddThh:mm:ssZ>",
	},
}

attributes(r) := lib.prop(r, ["attributes"], null)

deny contains lib.finding(r, "", {"enabled": object.get(attributes(r), "enabled", null), "exp": null}) if {
	some r in input.resources
	is_object(attributes(r))
	not lib.is_false(object.get(attributes(r), "enabled", true))
	object.get(attributes(r), "exp", null) == null
}

indeterminate contains lib.undecided(r, "the secret document carries no attributes") if {
	some r in input.resources
	not is_object(attributes(r))
}
