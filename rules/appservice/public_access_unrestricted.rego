# Sites reachable from any internet address. Two layers (Microsoft's "App Service access
# restrictions" documentation):
# 1. App access, the site's publicNetworkAccess: "Disabled" closes the public endpoint,
#    "Enabled" opens it. Unset (null / "") means enabled unless a private endpoint exists,
#    so the related privateEndpointConnections list decides (approved connection = closed);
#    indeterminate if that list was not fetched.
# 2. Site access restrictions (config/web ipSecurityRestrictions): the unmatched-traffic
#    action is ipSecurityRestrictionsDefaultAction when set; unset, it is Allow when there
#    are no rules and Deny as soon as one exists. ARM lists that unmatched rule itself as
#    the synthetic entry with ipAddress "Any" ("Allow all" / "Deny all"), which is not a
#    rule. An Allow rule for 0.0.0.0/0 or ::/0 without header filters, not preceded by a
#    Deny for the same, also opens the site.
# Low: most web apps are public on purpose; this surfaces the ones nobody restricted.
# Apps in an App Service Environment are not judged: an internal (ILB) environment keeps
# even "Enabled" apps private, and the environment is not read here.
package scanledger.rules.appservice.public_access_unrestricted

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-009",
	"title": "App Service app is reachable from any internet address",
	"severity": "low",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "Public access is enabled and no access restriction limits who can connect, so every internet address can reach the app. Fine for a public website; for internal apps and APIs, restrict access (IP or service-tag rules, Front Door) or use a private endpoint.",
	"remediation": {
		"portal": "App Service > Settings > Networking > Public network access: Enabled from select virtual networks and IP addresses (add allow rules, unmatched rule action Deny), or Disabled with a private endpoint.",
		"cli": "az webapp config access-restriction add --resource-group <rg> --name <app> --rule-name allow-frontdoor --action Allow --service-tag AzureFrontDoor.Backend --priority 100",
	},
	"related": {
		"config/web": "2023-12-01",
		"privateEndpointConnections": "2023-12-01",
	},
}

in_scope(r) if appservice.str(appservice.get(r, ["properties", "hostingEnvironmentProfile", "id"])) == ""

pna(r) := appservice.lc(lib.prop(r, ["publicNetworkAccess"], null))

approved_private_endpoint(r) if {
	some c in appservice.arr(lib.related(r, "privateEndpointConnections"))
	appservice.lc(appservice.get(c, ["properties", "privateLinkServiceConnectionState", "status"])) == "approved"
}

# app_access(r): "enabled", "disabled" or "unknown".
app_access(r) := "disabled" if pna(r) == "disabled"

app_access(r) := "enabled" if pna(r) == "enabled"

app_access(r) := "disabled" if {
	not pna(r) in {"enabled", "disabled"}
	lib.has_related(r, "privateEndpointConnections")
	approved_private_endpoint(r)
}

app_access(r) := "enabled" if {
	not pna(r) in {"enabled", "disabled"}
	lib.has_related(r, "privateEndpointConnections")
	not approved_private_endpoint(r)
}

app_access(r) := "unknown" if {
	not pna(r) in {"enabled", "disabled"}
	lib.related_missing(r, "privateEndpointConnections")
}

restrictions(cfg) := appservice.arr(appservice.get(cfg, ["ipSecurityRestrictions"]))

synthetic(x) if appservice.lc(appservice.get(x, ["ipAddress"])) == "any"

real_rules(cfg) := [x | some x in restrictions(cfg); not synthetic(x)]

unmatched_action(cfg) := a if {
	a := appservice.lc(appservice.get(cfg, ["ipSecurityRestrictionsDefaultAction"]))
	a in {"allow", "deny"}
} else := "allow" if {
	count(real_rules(cfg)) == 0
} else := "deny"

everyone(x) if {
	some p in split(appservice.str(appservice.get(x, ["ipAddress"])), ",")
	trim_space(p) in {"0.0.0.0/0", "::/0"}
}

no_headers(x) if count(appservice.obj(appservice.get(x, ["headers"]))) == 0

action(x) := a if {
	a := appservice.lc(appservice.get(x, ["action"]))
	a != ""
} else := "allow"

priority(x) := p if {
	p := appservice.get(x, ["priority"])
	is_number(p)
} else := 2147483647

open_rules(cfg) := [appservice.get(x, ["name"]) |
	some x in real_rules(cfg)
	action(x) == "allow"
	everyone(x)
	no_headers(x)
	not denied_before(cfg, x)
]

denied_before(cfg, allow_rule) if {
	some d in real_rules(cfg)
	action(d) == "deny"
	everyone(d)
	priority(d) < priority(allow_rule)
}

unrestricted(cfg) if unmatched_action(cfg) == "allow"

unrestricted(cfg) if count(open_rules(cfg)) > 0

deny contains lib.finding(r, "", details) if {
	some r in input.resources
	in_scope(r)
	app_access(r) == "enabled"
	appservice.has_config(r)
	cfg := appservice.config(r)
	unrestricted(cfg)
	details := {
		"publicNetworkAccess": lib.prop(r, ["publicNetworkAccess"], null),
		"unmatchedRuleAction": unmatched_action(cfg),
		"openRules": open_rules(cfg),
	}
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	in_scope(r)
	not app_access(r) == "disabled"
	appservice.config_unknown(r)
}

indeterminate contains lib.undecided(r, "public network access is unset and the private endpoint connections were not fetched") if {
	some r in input.resources
	in_scope(r)
	app_access(r) == "unknown"
	appservice.has_config(r)
	unrestricted(appservice.config(r))
}
