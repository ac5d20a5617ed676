# App Service failed request tracing off: config/web `requestTracingEnabled` not true.
# Checkov CKV_AZURE_66. Info: a diagnostic aid (traces of failed requests through the IIS
# pipeline) that also helps reconstruct attacks.
package scanledger.rules.appservice.request_tracing_disabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-019",
	"title": "App Service failed request tracing is off",
	"severity": "info",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "Failed request tracing is off, so no trace of how failed requests moved through the web server is kept for troubleshooting or investigation. Reads Microsoft.Web/sites/config (web) 2023-12-01 `properties.requestTracingEnabled`.",
	"remediation": {
		"portal": "App Service > Monitoring > App Service logs > Failed request tracing: On > Save.",
		"cli": "az webapp log config --resource-group <rg> --name <app> --failed-request-tracing true",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"requestTracingEnabled": appservice.get(appservice.config(r), ["requestTracingEnabled"])}) if {
	some r in input.resources
	appservice.has_config(r)
	not lib.is_true(appservice.get(appservice.config(r), ["requestTracingEnabled"]))
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
