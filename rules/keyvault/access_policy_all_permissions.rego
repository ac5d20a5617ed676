# An access policy grants the catch-all "all" permission on keys, secrets, certificates or
# storage accounts. Access policies are ignored when the vault uses Azure RBAC
# (enableRbacAuthorization true), so such vaults are not flagged. One finding per policy;
# sub_item is the principal's objectId (plus applicationId for compound identities).
package scanledger.rules.keyvault.access_policy_all_permissions

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-KV-006",
	"title": "Key vault access policy grants all permissions",
	"severity": "low",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.5.18", "A.8.2"],
	},
	"description": "An access policy gives a principal every permission (including delete, purge, backup and restore) on a class of vault objects, far beyond what an application or operator normally needs; a compromise of that principal exposes or destroys the whole class.",
	"remediation": {
		"portal": "Key vault > Access policies > edit the principal's policy > select only the operations it needs (e.g. Get, List) > Save; better, switch the vault to Azure RBAC.",
		"cli": "az keyvault set-policy --name <vault> --resource-group <rg> --object-id <object-id> --secret-permissions get list",
	},
}

principal(p) := concat("/", [object.get(p, "objectId", ""), app]) if {
	app := object.get(p, "applicationId", null)
	is_string(app)
	app != ""
} else := object.get(p, "objectId", "")

deny contains lib.finding(r, principal(p), {"objectId": object.get(p, "objectId", null), "all": scopes}) if {
	some r in input.resources
	not lib.is_true(lib.prop(r, ["enableRbacAuthorization"], null))
	some p in slib.arr(lib.prop(r, ["accessPolicies"], []))
	scopes := sort([s |
		some s in ["keys", "secrets", "certificates", "storage"]
		some perm in slib.arr(object.get(p, ["permissions", s], []))
		slib.lc(perm) == "all"
	])
	count(scopes) > 0
}
