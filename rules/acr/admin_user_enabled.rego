# The registry's admin user is enabled (adminUserEnabled true). Default false: only an
# explicit true fires.
package scanledger.rules.acr.admin_user_enabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-ACR-001",
	"title": "Container registry admin user is enabled",
	"severity": "high",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.AC-1", "PR.AC-4"],
		"iso27001": ["A.5.17", "A.8.2"],
	},
	"description": "The admin user is a single shared account with push and pull rights on every repository; its two passwords are long-lived, are read by anyone with the listCredentials permission and leave no per-person audit trail, so a leaked password lets anyone push poisoned images.",
	"remediation": {
		"portal": "Container registry > Settings > Access keys > Admin user: untick (after moving clients to Entra ID identities or repository-scoped tokens).",
		"cli": "az acr update --name <registry> --admin-enabled false",
	},
}

deny contains lib.finding(r, "", {"adminUserEnabled": v}) if {
	some r in input.resources
	v := lib.prop(r, ["adminUserEnabled"], false)
	lib.is_true(v)
}
