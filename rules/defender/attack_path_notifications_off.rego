# Defender for Cloud does not e-mail attack paths: the security contact (2023-12-01-preview
# shape) has no `notificationsSources` entry of sourceType AttackPath, or the whole contact
# is disabled (`isEnabled` false). Prowler defender_attack_path_notifications_properly_
# configured. Contacts in the older shapes (no notificationsSources, no isEnabled) cannot
# express attack-path e-mails: indeterminate, since the API version the source read them
# with did not return the setting.
package scanledger.rules.defender.attack_path_notifications_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-024",
	"title": "Defender for Cloud does not e-mail attack paths",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/securityContacts"],
	"frameworks": {
		"nist_csf": ["DE.DP-4", "RS.CO-2"],
		"iso27001": ["A.5.25"],
	},
	"description": "No attack-path notification is configured on the security contact, so newly found attack paths (chains of exposures leading to critical resources) are only seen by whoever opens Defender for Cloud. Reads Microsoft.Security/securityContacts 2023-12-01-preview `properties.notificationsSources[]` (sourceType AttackPath, minimalRiskLevel) and `properties.isEnabled`.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Email notifications > Notify about attack paths with the following risk level (or higher): Critical or High > Save.",
		"cli": "az rest --method put --url \"https://management.azure.com/subscriptions/<sub>/providers/Microsoft.Security/securityContacts/default?api-version=2023-12-01-preview\" --body @contact.json",
	},
}

new_shape(r) if lib.has_prop(r, ["notificationsSources"])

new_shape(r) if lib.has_prop(r, ["isEnabled"])

attack_paths(r) if {
	some s in lib.arr(lib.prop(r, ["notificationsSources"], []))
	platform.str_eq(object.get(s, "sourceType", null), "AttackPath")
}

deny contains lib.finding(r, "", {
	"isEnabled": lib.prop(r, ["isEnabled"], null),
	"notificationsSources": lib.prop(r, ["notificationsSources"], null),
}) if {
	some r in input.resources
	new_shape(r)
	not attack_paths_mailed(r)
}

# attack_paths_mailed(r): attack paths are e-mailed (an AttackPath source on an enabled contact).
attack_paths_mailed(r) if {
	not platform.contact_disabled(r)
	attack_paths(r)
}

indeterminate contains lib.undecided(r, "the security contact is in a shape (API version) that has no attack-path notifications") if {
	some r in input.resources
	not new_shape(r)
}
