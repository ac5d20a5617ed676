# A custom role definition that grants every action ("*") and can be assigned at
# subscription scope or above (assignableScopes holding "/", a management group or a
# subscription): a home-made Owner (CIS v2.1.0 1.22 / v3.0.0 2.23 "No Custom Subscription
# Administrator Roles Exist"). Reads Microsoft.Authorization/roleDefinitions 2022-04-01
# `properties.type`, `permissions[].actions` and `assignableScopes`. Built-in roles are not
# judged. A "*" narrowed by notActions (e.g. everything but Microsoft.Authorization/*) is
# still reported, with the notActions in the details: what it excludes is for a person to
# weigh.
package scanledger.rules.identity.custom_owner_role

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-IAM-001",
	"title": "Custom role grants subscription owner permissions",
	"severity": "medium",
	"category": "identity",
	"resource_types": ["Microsoft.Authorization/roleDefinitions"],
	"frameworks": {
		"cis_azure": ["1.22"],
		"cis_v3": ["2.23"],
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.8.2"],
	},
	"description": "A custom role allows every action (*) and is assignable at subscription (or wider) scope, so whoever holds it is in effect an Owner while not showing up in reviews of Owner assignments. Reads Microsoft.Authorization/roleDefinitions 2022-04-01 `properties.type`, `properties.permissions[].actions`, `notActions` and `assignableScopes`.",
	"remediation": {
		"portal": "Subscription > Access control (IAM) > Roles > the custom role > Edit: list only the actions it needs (or delete it and use a built-in role) > Review + update.",
		"cli": "az role definition update --role-definition <role.json>",
	},
}

custom(r) if lib.eq_ci(lib.prop(r, ["type"], ""), "CustomRole")

# broad_scope(s): "/", a management group, or a subscription (not a resource group).
broad_scope(s) if trim_right(s, "/") == ""

broad_scope(s) if regex.match(`^/providers/microsoft\.management/managementgroups/[^/]+/?$`, lower(s))

broad_scope(s) if regex.match(`^/subscriptions/[^/]+/?$`, lower(s))

wildcard(r) if {
	some p in lib.arr(lib.prop(r, ["permissions"], []))
	some a in lib.arr(object.get(lib.obj(p), "actions", []))
	a == "*"
}

scopes(r) := [s | some s in lib.arr(lib.prop(r, ["assignableScopes"], [])); is_string(s); broad_scope(s)]

deny contains lib.finding(r, "", {
	"roleName": lib.prop(r, ["roleName"], null),
	"assignableScopes": scopes(r),
	"notActions": [a | some p in lib.arr(lib.prop(r, ["permissions"], [])); some a in lib.arr(object.get(lib.obj(p), "notActions", []))],
}) if {
	some r in input.resources
	custom(r)
	wildcard(r)
	count(scopes(r)) > 0
}

indeterminate contains lib.undecided(r, "the role definition carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
