# The Defender for Cloud security contact lists no e-mail address, so security alerts and
# attack-path notices reach no named security team (at most the role holders).
# A subscription with no security contact at all cannot be detected by a per-document rule.
# Types: the list API has been seen to answer with the singular type
# `Microsoft.Security/securityContact` (REST reference samples), so both spellings are read.
package scanledger.rules.defender.security_contact_no_email

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-012",
	"title": "Defender for Cloud security contact has no e-mail address",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/securityContacts", "Microsoft.Security/securityContact"],
	"frameworks": {
		"cis_azure": ["2.1.18"],
		"cis_v3": ["3.1.13"],
		"nist_csf": ["RS.CO-2", "DE.DP-4"],
		"iso27001": ["A.5.24", "A.6.8"],
	},
	"description": "The subscription's security contact has no additional e-mail address, so Microsoft Defender for Cloud cannot send security alerts to the security team; incidents may go unnoticed.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > <subscription> > Email notifications > Additional email addresses: add the security team's address > Save.",
		"cli": "az rest --method put --url \"https://management.azure.com/subscriptions/<subscription-id>/providers/Microsoft.Security/securityContacts/default?api-version=2023-12-01-preview\" --body '{\"properties\": {\"isEnabled\": true, \"emails\": \"<security-team-email>\", \"notificationsByRole\": {\"state\": \"On\", \"roles\": [\"Owner\"]}, \"notificationsSources\": [{\"sourceType\": \"Alert\", \"minimalSeverity\": \"High\"}]}}'",
	},
}

deny contains lib.finding(r, "", {"emails": lib.prop(r, ["emails"], lib.prop(r, ["email"], null))}) if {
	some r in input.resources
	count(platform.contact_emails(r)) == 0
}
