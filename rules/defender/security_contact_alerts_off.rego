# Alert e-mails from Defender for Cloud are off. Accepts the three API shapes: the
# 2023-12-01-preview one (isEnabled + an Alert entry in notificationsSources), the
# 2020-01-01-preview one (alertNotifications.state) and the 2017-08-01-preview one
# (alertNotifications "On"/"Off"). Any minimal severity (Low, Medium, High) passes, since each
# includes high-severity alerts. A document that states none of these is indeterminate.
package scanledger.rules.defender.security_contact_alerts_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-013",
	"title": "Defender for Cloud does not e-mail security alerts",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/securityContacts", "Microsoft.Security/securityContact"],
	"frameworks": {
		"cis_azure": ["2.1.19"],
		"cis_v3": ["3.1.14"],
		"nist_csf": ["DE.DP-4", "RS.CO-2"],
		"iso27001": ["A.5.24", "A.6.8"],
	},
	"description": "The security contact does not send e-mail notifications for security alerts (notifications are off, the contact is disabled, or no Alert source is configured), so high-severity alerts are only seen by someone who opens the portal.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Email notifications > Notify about alerts with the following severity (or higher): checked, High > Save.",
		"cli": "az rest --method put --url \"https://management.azure.com/subscriptions/<subscription-id>/providers/Microsoft.Security/securityContacts/default?api-version=2023-12-01-preview\" --body '{\"properties\": {\"isEnabled\": true, \"emails\": \"<security-team-email>\", \"notificationsByRole\": {\"state\": \"On\", \"roles\": [\"Owner\"]}, \"notificationsSources\": [{\"sourceType\": \"Alert\", \"minimalSeverity\": \"High\"}]}}'",
	},
}

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	platform.alerts_known(r)
	not platform.alerts_on(r)
	details := {
		"isEnabled": lib.prop(r, ["isEnabled"], null),
		"notificationsSources": lib.prop(r, ["notificationsSources"], null),
		"alertNotifications": lib.prop(r, ["alertNotifications"], null),
	}
}

indeterminate contains lib.undecided(r, "the security contact states no alert-notification setting") if {
	some r in input.resources
	not platform.alerts_known(r)
}
