# The subscription has no Application Insights resource, so no application in it sends
# telemetry (requests, exceptions, dependencies) that would show an attack or an outage
# at the application layer. CIS asks for Application Insights to be configured; this
# checks that at least one component exists. Indeterminate when components could not be
# listed. REST: Components 2020-02-02 (https://learn.microsoft.com/rest/api/application-insights/components/list).
package scanledger.rules.monitoring.application_insights_missing

import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-MON-113",
	"title": "Subscription has no Application Insights",
	"severity": "low",
	"category": "monitoring",
	"scope": "subscription",
	"resource_types": ["Microsoft.Insights/components"],
	"reads": {"Microsoft.Insights/components": []},
	"frameworks": {
		"cis_azure": ["5.3.1"],
		"cis_v3": ["6.1.3.1"],
		"nist_csf": ["DE.CM-1", "DE.AE-3"],
		"iso27001": ["A.8.16"],
	},
	"description": "No Application Insights component exists in this subscription, so its applications send no application-level telemetry (requests, failures, dependencies) to detect or investigate attacks and outages.",
	"remediation": {
		"portal": "Application Insights > Create > resource group, name, region, workspace-based > Review + create; then connect the applications.",
		"cli": "az monitor app-insights component create --app <name> --location <region> --resource-group <rg> --workspace <workspace-resource-id>",
	},
}

deny contains inv.finding("", {"application_insights_components": 0}) if {
	count(inv.resources("Microsoft.Insights/components")) == 0
}
