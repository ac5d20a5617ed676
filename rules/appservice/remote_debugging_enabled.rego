# Remote debugging on (config/web remoteDebuggingEnabled true; default false, so absent
# passes). Applies to function apps too. Indeterminate when config/web was not fetched.
package scanledger.rules.appservice.remote_debugging_enabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-005",
	"title": "App Service app has remote debugging enabled",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_v3": ["9.12"],
		"nist_csf": ["PR.AC-3", "PR.PT-3"],
		"iso27001": ["A.8.9"],
	},
	"description": "Remote debugging is on, which opens debugger ports on the app and lets anyone holding publishing credentials attach a debugger to the running process and read its memory, secrets included. It is meant to be switched on briefly, not left enabled.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Remote debugging: Off > Save.",
		"cli": "az webapp config set --resource-group <rg> --name <app> --remote-debugging-enabled false",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"remoteDebuggingEnabled": v, "remoteDebuggingVersion": appservice.get(appservice.config(r), ["remoteDebuggingVersion"])}) if {
	some r in input.resources
	appservice.has_config(r)
	v := appservice.get(appservice.config(r), ["remoteDebuggingEnabled"])
	lib.is_true(v)
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
