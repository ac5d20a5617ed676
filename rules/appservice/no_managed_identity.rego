# Sites with no managed identity (identity absent or type "None"). Low: an app that calls
# no Azure service needs none, but CIS recommends one so that apps reach Key Vault,
# storage or databases without secrets in app settings. Applies to function apps too.
package scanledger.rules.appservice.no_managed_identity

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-007",
	"title": "App Service app has no managed identity",
	"severity": "low",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.4"],
		"cis_v3": ["9.5"],
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17"],
	},
	"description": "The app has no system- or user-assigned managed identity, so any Azure resource it uses must be reached with secrets (connection strings, keys) stored in its settings, which can leak and must be rotated by hand.",
	"remediation": {
		"portal": "App Service > Settings > Identity > System assigned > Status: On > Save, then grant the identity the roles it needs.",
		"cli": "az webapp identity assign --resource-group <rg> --name <app>",
	},
}

deny contains lib.finding(r, "", {"identityType": appservice.get(r, ["identity", "type"])}) if {
	some r in input.resources
	not appservice.has_managed_identity(r)
}
