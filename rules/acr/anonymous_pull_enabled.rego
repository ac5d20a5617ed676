# Anonymous (unauthenticated) pull is enabled: anonymousPullEnabled true. Default false.
package scanledger.rules.acr.anonymous_pull_enabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-ACR-003",
	"title": "Container registry allows anonymous pull",
	"severity": "high",
	"category": "acr",
	"resource_types": ["Microsoft.ContainerRegistry/registries"],
	"frameworks": {
		"nist_csf": ["PR.AC-4", "PR.DS-5"],
		"iso27001": ["A.5.15", "A.8.3"],
	},
	"description": "Anyone who can reach the registry can pull every image without credentials, exposing proprietary code, embedded secrets and the software inventory attackers use to pick exploits.",
	"remediation": {
		"portal": "Not shown in all portal versions; use the CLI (anonymous pull is a registry property).",
		"cli": "az acr update --name <registry> --anonymous-pull-enabled false",
	},
}

deny contains lib.finding(r, "", {"anonymousPullEnabled": v}) if {
	some r in input.resources
	v := lib.prop(r, ["anonymousPullEnabled"], false)
	lib.is_true(v)
}
