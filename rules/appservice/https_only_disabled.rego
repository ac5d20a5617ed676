# Sites that serve plain HTTP: properties.httpsOnly not true. Azure's default is false
# (apps answer HTTP unless told otherwise), so absent fires. Applies to web apps and
# function apps alike (HTTP triggers carry function keys in headers or query strings).
package scanledger.rules.appservice.https_only_disabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-001",
	"title": "App Service app accepts unencrypted HTTP",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.2"],
		"cis_v3": ["9.1"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "HTTPS Only is off, so the app answers plain HTTP requests: cookies, tokens, function keys and content can be read or altered on the network.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > HTTPS Only: On > Save.",
		"cli": "az webapp update --resource-group <rg> --name <app> --https-only true",
	},
}

deny contains lib.finding(r, "", {"httpsOnly": v, "kind": object.get(r, "kind", null)}) if {
	some r in input.resources
	v := lib.prop(r, ["httpsOnly"], null)
	not lib.is_true(v)
}
