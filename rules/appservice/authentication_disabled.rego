# App Service Authentication ("Easy Auth") off: config/authsettingsV2 platform.enabled not
# true. A null document (404) means it was never configured: off. Informational: many
# apps authenticate users in their own code, and public sites need no authentication.
# Every kind of site and deployment slot is judged, function apps included: CIS v2.1.0 9.1
# / v3.0.0 9.2 ask it of all App Service apps (function apps were skipped before 2026-11).
# Indeterminate when the auth settings were not fetched.
package scanledger.rules.appservice.authentication_disabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-010",
	"title": "App Service authentication is not enabled",
	"severity": "info",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.1"],
		"cis_v3": ["9.2"],
		"nist_csf": ["PR.AC-7"],
		"iso27001": ["A.8.5"],
	},
	"description": "App Service Authentication is off, so every anonymous request reaches the application code; access control depends entirely on the app. Enable it (for example with Microsoft Entra ID) for apps that should only serve signed-in users.",
	"remediation": {
		"portal": "App Service > Settings > Authentication > Add identity provider > Microsoft > Restrict access: Require authentication > Add.",
		"cli": "az webapp auth update --resource-group <rg> --name <app> --enabled true --action RedirectToLoginPage",
	},
	"related": {"config/authsettingsV2": "2023-12-01"},
}

deny contains lib.finding(r, "", {"platformEnabled": v}) if {
	some r in input.resources
	lib.has_related(r, "config/authsettingsV2")
	v := appservice.get(lib.related(r, "config/authsettingsV2"), ["properties", "platform", "enabled"])
	not lib.is_true(v)
}

indeterminate contains lib.undecided(r, "the authentication settings (config/authsettingsV2) were not fetched") if {
	some r in input.resources
	lib.related_missing(r, "config/authsettingsV2")
}
