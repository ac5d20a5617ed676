# Key Vault key without automatic rotation (CIS v2.1.0 8.8 / v3.0.0 3.3.8 "Ensure Automatic
# Key Rotation is Enabled Within Azure Key Vault for the Supported Services"): its rotation
# policy has no lifetime action of type `rotate` with a trigger. Reads the child resource
# Microsoft.KeyVault/vaults/keys 2023-07-01 `properties.rotationPolicy.lifetimeActions[]`
# (`action.type`, `trigger.timeAfterCreate` / `timeBeforeExpiry`); ARM omits an empty
# policy, so absent fires. A `notify` action alone only sends an event. Disabled keys are
# not judged. Low: keys protecting data (customer-managed keys) are what rotation is for.
package scanledger.rules.keyvault.key_rotation_missing

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-012",
	"title": "Key Vault key is not rotated automatically",
	"severity": "low",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults/keys"],
	"frameworks": {
		"cis_azure": ["8.8"],
		"cis_v3": ["3.3.8"],
		"nist_csf": ["PR.DS-1"],
		"iso27001": ["A.8.24"],
	},
	"description": "The key has no rotation policy that creates new versions automatically, so the same key material stays in use until someone rotates it by hand. Services using the versionless key URI (Storage, SQL TDE, disks with customer-managed keys) pick up a rotated version by themselves. Reads Microsoft.KeyVault/vaults/keys 2023-07-01 `properties.rotationPolicy.lifetimeActions`.",
	"remediation": {
		"portal": "Key vault > Objects > Keys > the key > Rotation policy > Enable auto rotation, set the rotation time and expiry > Save.",
		"cli": "az keyvault key rotation-policy update --vault-name <vault> --name <key> --value <policy.json>",
	},
}

rotates(r) if {
	some a in lib.arr(lib.prop(r, ["rotationPolicy", "lifetimeActions"], []))
	lib.eq_ci(object.get(a, ["action", "type"], ""), "rotate")
	some t in ["timeAfterCreate", "timeBeforeExpiry"]
	is_string(object.get(a, ["trigger", t], null))
}

deny contains lib.finding(r, "", {"rotationPolicy": lib.prop(r, ["rotationPolicy"], null)}) if {
	some r in input.resources
	is_object(lib.prop(r, ["attributes"], null))
	not lib.is_false(lib.prop(r, ["attributes", "enabled"], true))
	not rotates(r)
}

indeterminate contains lib.undecided(r, "the key document carries no attributes") if {
	some r in input.resources
	not is_object(lib.prop(r, ["attributes"], null))
}
