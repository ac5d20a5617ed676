# App Service app running a Python version whose upstream support has ended (CIS v2.1.0 9.6
# / v3.0.0 9.8). As of 30 November 2026 the oldest supported Python is 3.11 (3.10 ended in
# October 2026, 3.9 in October 2025, per devguide.python.org/versions): anything below
# 3.11 fires. Reads config/web `linuxFxVersion` ("PYTHON|3.10") or the Windows
# `pythonVersion`; a site not running Python is not judged.
package scanledger.rules.appservice.python_version_unsupported

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-014",
	"title": "App Service app runs an unsupported Python version",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.6"],
		"cis_v3": ["9.8"],
		"nist_csf": ["PR.IP-12", "ID.RA-1"],
		"iso27001": ["A.8.8"],
	},
	"description": "The app runs a Python version that no longer receives security fixes (the threshold, 3.11, is the oldest version supported upstream as of 30 November 2026). Reads Microsoft.Web/sites/config (web) 2023-12-01 `properties.linuxFxVersion` and `properties.pythonVersion`.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Stack settings > Python version: 3.11 or later > Save (test the app first).",
		"cli": "az webapp config set --resource-group <rg> --name <app> --linux-fx-version \"PYTHON|3.12\"",
	},
	"related": {"config/web": "2023-12-01"},
}

version(r) := appservice.stack_version(r, "python")

deny contains lib.finding(r, "", {"version": version(r), "linuxFxVersion": appservice.get(appservice.config(r), ["linuxFxVersion"]), "oldestSupported": "3.11"}) if {
	some r in input.resources
	appservice.has_config(r)
	version(r)
	n := appservice.version_number(version(r))
	n < 311
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
