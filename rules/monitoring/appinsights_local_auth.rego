# An Application Insights component accepts telemetry authenticated only by its
# instrumentation key / connection string (local auth), not Entra ID. The property is
# spelled `DisableLocalAuth` by the 2020-02-02 API (some tools write `disableLocalAuth`);
# its documented default is false, so absent fires.
package scanledger.rules.monitoring.appinsights_local_auth

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-MON-003",
	"title": "Application Insights accepts ingestion without Entra ID authentication",
	"severity": "low",
	"category": "monitoring",
	"resource_types": ["Microsoft.Insights/components"],
	"frameworks": {
		"nist_csf": ["PR.AC-7", "PR.DS-6"],
		"iso27001": ["A.8.5"],
	},
	"description": "Local authentication is enabled, so anyone holding the connection string (often shipped in browser JavaScript or mobile apps) can send telemetry to the component and poison the data used for monitoring and alerting.",
	"remediation": {
		"portal": "Application Insights > Configure > Properties > Local Authentication: Disabled > Save (grant senders the Monitoring Metrics Publisher role first).",
		"cli": "az resource update --ids <component-resource-id> --set properties.DisableLocalAuth=true",
	},
}

disable_local_auth(r) := platform.values_ci(platform.obj(object.get(r, "properties", {})), "DisableLocalAuth")

# Fires unless the flag is true; absent means the documented default false (local auth on).
deny contains lib.finding(r, "", {"DisableLocalAuth": values}) if {
	some r in input.resources
	values := disable_local_auth(r)
	not any_true(values)
}

any_true(values) if {
	some v in values
	lib.is_true(v)
}
