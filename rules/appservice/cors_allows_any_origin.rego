# CORS open to every origin: config/web cors.allowedOrigins contains "*". Any website a
# user visits can then call the app from the browser and read its (non-credentialed)
# responses. App Service refuses "*" together with supportCredentials, so cookies are not
# sent cross-origin; that keeps this at low. Applies to function apps too (their HTTP
# APIs are the usual CORS targets). Indeterminate when config/web was not fetched.
package scanledger.rules.appservice.cors_allows_any_origin

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-012",
	"title": "App Service app allows cross-origin requests from any origin",
	"severity": "low",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.8.26"],
	},
	"description": "The app's CORS policy allows every origin (*), so scripts on any website can call the app from a visitor's browser and read the responses. List only the origins that need access.",
	"remediation": {
		"portal": "App Service > API > CORS > remove * and list the allowed origins > Save.",
		"cli": "az webapp cors remove --resource-group <rg> --name <app> --allowed-origins \"*\"",
	},
	"related": {"config/web": "2023-12-01"},
}

origins(r) := appservice.arr(appservice.get(appservice.config(r), ["cors", "allowedOrigins"]))

deny contains lib.finding(r, "", {"allowedOrigins": origins(r)}) if {
	some r in input.resources
	appservice.has_config(r)
	some o in origins(r)
	trim_space(appservice.str(o)) == "*"
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
