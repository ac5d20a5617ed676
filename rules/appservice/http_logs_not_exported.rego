# No diagnostic setting of the app sends the AppServiceHTTPLogs category (by name, or
# through `allLogs`) to a destination (CIS v2.1.0 5.1.6 / v3.0.0 6.1.6 "logging for Azure
# AppService 'HTTP logs' is enabled"). Reads the site's diagnostic settings (related
# providers/Microsoft.Insights/diagnosticSettings, 2021-05-01-preview; a 404 or empty list
# means none). Function apps have no AppServiceHTTPLogs category and are not judged.
package scanledger.rules.appservice.http_logs_not_exported

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-020",
	"title": "App Service HTTP logs are not sent to Azure Monitor",
	"severity": "low",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["5.1.6"],
		"cis_v3": ["6.1.6"],
		"nist_csf": ["PR.PT-1", "DE.AE-3"],
		"iso27001": ["A.8.15"],
	},
	"description": "No diagnostic setting sends the app's HTTP logs (AppServiceHTTPLogs) to Log Analytics, a storage account or an event hub, so requests to the app cannot be searched or kept beyond the instance. Reads Microsoft.Insights/diagnosticSettings 2021-05-01-preview on the site, `properties.logs[]` and the destination ids.",
	"remediation": {
		"portal": "App Service > Monitoring > Diagnostic settings > Add diagnostic setting > HTTP logs (or allLogs) > a Log Analytics workspace > Save.",
		"cli": "az monitor diagnostic-settings create --name http-logs --resource <app-id> --workspace <workspace-id> --logs '[{\"category\":\"AppServiceHTTPLogs\",\"enabled\":true}]'",
	},
	"related": {"providers/Microsoft.Insights/diagnosticSettings": "2021-05-01-preview"},
}

path := "providers/Microsoft.Insights/diagnosticSettings"

settings(r) := lib.arr(lib.related(r, path)) if lib.has_related(r, path)

sends(r) if {
	some s in settings(r)
	lib.has_destination(s)
	lib.logs_category(s, "AppServiceHTTPLogs")
}

deny contains lib.finding(r, "", {"settings": [object.get(s, "name", "") | some s in settings(r)]}) if {
	some r in input.resources
	not appservice.is_function_app(r)
	lib.has_related(r, path)
	not sends(r)
}

indeterminate contains lib.undecided(r, "the app's diagnostic settings were not fetched") if {
	some r in input.resources
	not appservice.is_function_app(r)
	lib.related_missing(r, "providers/Microsoft.Insights/diagnosticSettings")
}
