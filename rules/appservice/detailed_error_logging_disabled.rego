# App Service detailed error messages logging off: config/web `detailedErrorLoggingEnabled`
# not true. Checkov CKV_AZURE_65. The pages are written to the app's file system, not sent
# to clients; info.
package scanledger.rules.appservice.detailed_error_logging_disabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-018",
	"title": "App Service detailed error logging is off",
	"severity": "info",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "Detailed error logging is off, so the HTML pages describing HTTP errors (4xx/5xx) are not kept on the server for diagnosing failures and probing. Reads Microsoft.Web/sites/config (web) 2023-12-01 `properties.detailedErrorLoggingEnabled`.",
	"remediation": {
		"portal": "App Service > Monitoring > App Service logs > Detailed error messages: On > Save.",
		"cli": "az webapp log config --resource-group <rg> --name <app> --detailed-error-messages true",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"detailedErrorLoggingEnabled": appservice.get(appservice.config(r), ["detailedErrorLoggingEnabled"])}) if {
	some r in input.resources
	appservice.has_config(r)
	not lib.is_true(appservice.get(appservice.config(r), ["detailedErrorLoggingEnabled"]))
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
