# Incoming client certificates not required: clientCertEnabled not true (default false,
# so absent fires), or enabled in an optional mode (clientCertMode Optional /
# OptionalInteractiveUser). Informational: mutual TLS suits APIs called by known clients;
# most browser-facing apps do not use it. Function apps are not judged (they are
# authorised by function keys or App Service authentication).
package scanledger.rules.appservice.client_certificates_not_required

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-008",
	"title": "App Service app does not require client certificates",
	"severity": "info",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.AC-7"],
		"iso27001": ["A.8.5"],
	},
	"description": "Incoming client certificates are not required, so the app does not authenticate callers with mutual TLS. Consider it for APIs that only known clients or services should reach.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Client certificate mode: Required > Save.",
		"cli": "az webapp update --resource-group <rg> --name <app> --client-cert-enabled true --client-cert-mode Required",
	},
}

required(r) if {
	lib.is_true(lib.prop(r, ["clientCertEnabled"], null))
	appservice.lc(lib.prop(r, ["clientCertMode"], "Required")) in {"required", ""}
}

deny contains lib.finding(r, "", {"clientCertEnabled": lib.prop(r, ["clientCertEnabled"], null), "clientCertMode": lib.prop(r, ["clientCertMode"], null)}) if {
	some r in input.resources
	not appservice.is_function_app(r)
	not required(r)
}
