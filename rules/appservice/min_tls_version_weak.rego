# Sites whose minimum inbound TLS version is 1.0 or 1.1 (config/web minTlsVersion).
# Azure's default is 1.2, so an absent value passes. Resource Graph leaves siteConfig
# mostly null, so the value comes from the related config/web document; a site whose
# config was not fetched is indeterminate.
package scanledger.rules.appservice.min_tls_version_weak

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-002",
	"title": "App Service app accepts TLS 1.0 or 1.1",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.3"],
		"cis_v3": ["9.4"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The app's minimum TLS version is below 1.2, so clients can negotiate deprecated TLS 1.0/1.1 with known weaknesses.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Minimum inbound TLS version: 1.2 (or 1.3) > Save.",
		"cli": "az webapp config set --resource-group <rg> --name <app> --min-tls-version 1.2",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"minTlsVersion": v}) if {
	some r in input.resources
	appservice.has_config(r)
	v := appservice.get(appservice.config(r), ["minTlsVersion"])
	appservice.weak_tls(v)
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
