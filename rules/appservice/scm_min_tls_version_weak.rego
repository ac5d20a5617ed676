# The SCM (Kudu, deployment) endpoint's minimum TLS version is 1.0 or 1.1
# (config/web scmMinTlsVersion; default 1.2, so absent passes). Deployment credentials
# and code travel over this endpoint. Indeterminate when config/web was not fetched.
package scanledger.rules.appservice.scm_min_tls_version_weak

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-003",
	"title": "App Service deployment (SCM) endpoint accepts TLS 1.0 or 1.1",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The minimum TLS version of the app's SCM (Kudu) site is below 1.2, so deployments, publishing credentials and Kudu API calls can use deprecated TLS 1.0/1.1.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > SCM minimum inbound TLS version: 1.2 > Save.",
		"cli": "az webapp config set --resource-group <rg> --name <app> --generic-configurations \"{\\\"scmMinTlsVersion\\\": \\\"1.2\\\"}\"",
	},
	"related": {"config/web": "2023-12-01"},
}

deny contains lib.finding(r, "", {"scmMinTlsVersion": v}) if {
	some r in input.resources
	appservice.has_config(r)
	v := appservice.get(appservice.config(r), ["scmMinTlsVersion"])
	appservice.weak_tls(v)
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
