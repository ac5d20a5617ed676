# Subscription Owners are not e-mailed by Defender for Cloud: notificationsByRole is Off or
# does not list Owner (2020-01-01-preview and 2023-12-01-preview shapes), alertsToAdmins is
# Off (2017-08-01-preview), or the whole contact is disabled (isEnabled false). The portal's
# default is Owner/On. A document that states none of these is indeterminate.
package scanledger.rules.defender.security_contact_owner_not_notified

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-014",
	"title": "Defender for Cloud does not notify subscription Owners",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/securityContacts", "Microsoft.Security/securityContact"],
	"frameworks": {
		"cis_azure": ["2.1.17"],
		"cis_v3": ["3.1.12"],
		"nist_csf": ["RS.CO-2"],
		"iso27001": ["A.5.24", "A.6.8"],
	},
	"description": "Security alert e-mails are not sent to the subscription's Owners, so the people accountable for the subscription may not learn of an attack on it.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Email notifications > All users with the following roles: Owner > Save.",
		"cli": "az rest --method put --url \"https://management.azure.com/subscriptions/<subscription-id>/providers/Microsoft.Security/securityContacts/default?api-version=2023-12-01-preview\" --body '{\"properties\": {\"isEnabled\": true, \"emails\": \"<security-team-email>\", \"notificationsByRole\": {\"state\": \"On\", \"roles\": [\"Owner\"]}, \"notificationsSources\": [{\"sourceType\": \"Alert\", \"minimalSeverity\": \"High\"}]}}'",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	platform.roles_known(r)
	not platform.owners_notified(r)
	details := {
		"isEnabled": lib.prop(r, ["isEnabled"], null),
		"notificationsByRole": lib.prop(r, ["notificationsByRole"], null),
		"alertsToAdmins": lib.prop(r, ["alertsToAdmins"], null),
	}
}

indeterminate contains lib.undecided(r, "the security contact states no role-notification setting") if {
	some r in input.resources
	not platform.roles_known(r)
}
