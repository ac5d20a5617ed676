# App Service app running a PHP version whose upstream support has ended (CIS v2.1.0 9.5 /
# v3.0.0 9.7 "PHP version is currently supported"). As of 30 November 2026 the oldest
# supported PHP is 8.2 (security fixes until 31 December 2026; 8.1 ended 31 December
# 2025, per php.net/supported-versions): anything below 8.2 fires. Revisit this threshold
# when 8.2 reaches its end of life. Reads config/web `linuxFxVersion` ("PHP|8.1") or, on
# Windows, `phpVersion` (a value other than OFF or empty means the PHP handler is
# enabled for the site, whether or not the app uses it); a site not running PHP is not
# judged.
package scanledger.rules.appservice.php_version_unsupported

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-013",
	"title": "App Service app runs an unsupported PHP version",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.5"],
		"cis_v3": ["9.7"],
		"nist_csf": ["PR.IP-12", "ID.RA-1"],
		"iso27001": ["A.8.8"],
	},
	"description": "The app runs a PHP version that no longer receives security fixes (the threshold, 8.2, is the oldest version supported upstream as of 30 November 2026), so known vulnerabilities in the runtime stay open. Reads Microsoft.Web/sites/config (web) 2023-12-01 `properties.linuxFxVersion` and `properties.phpVersion`.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Stack settings > PHP version: 8.2 or later > Save (test the app first).",
		"cli": "az webapp config set --resource-group <rg> --name <app> --linux-fx-version \"PHP|8.3\"",
	},
	"related": {"config/web": "2023-12-01"},
}

version(r) := appservice.stack_version(r, "php")

deny contains lib.finding(r, "", {"version": version(r), "linuxFxVersion": appservice.get(appservice.config(r), ["linuxFxVersion"]), "oldestSupported": "8.2"}) if {
	some r in input.resources
	appservice.has_config(r)
	version(r)
	n := appservice.version_number(version(r))
	n < 802
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
