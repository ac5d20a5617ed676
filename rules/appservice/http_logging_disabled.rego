# App Service built-in web server logging off: config/web `httpLoggingEnabled` not true
# (absent or null: off). Checkov CKV_AZURE_63. The Azure Monitor route for the same logs
# (AppServiceHTTPLogs) is AZ-APP-020's.
package scanledger.rules.appservice.http_logging_disabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-017",
	"title": "App Service web server (HTTP) logging is off",
	"severity": "low",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "Web server logging is off, so the app keeps no record of the HTTP requests it served (client address, URL, status) for investigating abuse. Reads Microsoft.Web/sites/config (web) 2023-12-01 `properties.httpLoggingEnabled`.",
	"remediation": {
		"portal": "App Service > Monitoring > App Service logs > Web server logging: File system (or Storage), set a retention > Save.",
		"cli": "az webapp log config --resource-group <rg> --name <app> --web-server-logging filesystem",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"httpLoggingEnabled": appservice.get(appservice.config(r), ["httpLoggingEnabled"])}) if {
	some r in input.resources
	appservice.has_config(r)
	not lib.is_true(appservice.get(appservice.config(r), ["httpLoggingEnabled"]))
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
