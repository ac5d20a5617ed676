# HTTP/2 off (config/web http20Enabled not true). App Service serves HTTP/1.1 unless
# HTTP/2 is switched on, so absent fires. Low: HTTP/1.1 is not a vulnerability; CIS
# recommends the latest HTTP version for its protocol fixes and performance. Applies to
# function apps too. Indeterminate when config/web was not fetched.
package scanledger.rules.appservice.http2_disabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-006",
	"title": "App Service app does not enable HTTP/2",
	"severity": "low",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.8"],
		"cis_v3": ["9.10"],
		"nist_csf": ["PR.IP-1"],
		"iso27001": ["A.8.9"],
	},
	"description": "The app only serves HTTP/1.1. HTTP/2 brings protocol-level fixes (header compression, no head-of-line blocking) and is the version CIS recommends; this is hardening, not an exposure.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > HTTP version: 2.0 > Save.",
		"cli": "az webapp config set --resource-group <rg> --name <app> --http20-enabled true",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"http20Enabled": v}) if {
	some r in input.resources
	appservice.has_config(r)
	v := appservice.get(appservice.config(r), ["http20Enabled"])
	not lib.is_true(v)
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
