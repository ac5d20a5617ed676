# Helpers for subscription rules (`"scope": "subscription"`): they read
# `input.inventory`, the subscription's resources of their types (projected to the
# paths their `reads` declare), instead of `input.resources`. The engine runs such a
# rule only when the source listed every type it reads; otherwise the rule is
# indeterminate without being evaluated. See docs/rule-authoring.md.
package scanledger.lib.inventory

import data.scanledger.lib
import rego.v1

# resources(t): the inventory's resources of type t (any case), [] when there are none.
resources(t) := object.get(object.get(input.inventory, "types", {}), lower(t), [])

# subscription: "/subscriptions/<id>", what findings about the subscription name.
subscription := input.subscription.id

# finding(sub_item, details): a `deny` entry about the subscription.
finding(sub_item, details) := {"id": subscription, "sub_item": sub_item, "details": details}

# region_finding(region, details): a `deny` entry about one region of the subscription
# ("/subscriptions/<id>/locations/<region>"); the region is its own sub-item.
region_finding(region, details) := {
	"id": concat("/", [subscription, "locations", region]),
	"sub_item": "",
	"details": details,
}

# undecided(reason): an `indeterminate` entry about the subscription.
undecided(reason) := {"id": subscription, "reason": reason}

# region(x): an ARM location as a region name: lower case, spaces removed
# ("West Europe" -> "westeurope"); undefined for a non-string.
region(x) := lower(replace(x, " ", "")) if is_string(x)

# ---------------------------------------------------------------------------------------
# Activity log alerts (Microsoft.Insights/activityLogAlerts, api 2020-10-01)
#
# An alert rule watches an operation when it is enabled (`enabled` defaults to true),
# its scopes include the whole subscription, and its condition's `allOf` has
# `category` = Administrative and `operationName` = the operation (case-insensitive).
# Narrowing leaves (`level`, `status`, `caller`, `resourceGroup`, ...) are allowed, as
# CIS allows them; an `anyOf` leaf matches when one of its alternatives does.

alerts := resources("Microsoft.Insights/activityLogAlerts")

props(a) := lib.obj(object.get(a, "properties", {}))

alert_enabled(a) if not lib.is_false(object.get(props(a), "enabled", true))

# The alert's scopes include this subscription itself (not only a resource group).
covers_subscription(a) if {
	some s in lib.arr(object.get(props(a), "scopes", []))
	is_string(s)
	lower(trim_right(s, "/")) == lower(subscription)
}

conditions(a) := lib.arr(object.get(lib.obj(object.get(props(a), "condition", {})), "allOf", []))

# leaf_equals(c, field, value): the condition (a leaf, or an anyOf of leaves) admits
# field == value.
leaf_equals(c, field, value) if {
	lib.eq_ci(object.get(lib.obj(c), "field", ""), field)
	lib.eq_ci(object.get(lib.obj(c), "equals", ""), value)
}

leaf_equals(c, field, value) if {
	some alt in lib.arr(object.get(lib.obj(c), "anyOf", []))
	lib.eq_ci(object.get(lib.obj(alt), "field", ""), field)
	lib.eq_ci(object.get(lib.obj(alt), "equals", ""), value)
}

has_condition(a, field, value) if {
	some c in conditions(a)
	leaf_equals(c, field, value)
}

# watched(category, field, value): an enabled, subscription-wide alert rule of the
# category has the condition field == value (e.g. operationName = .../write).
watched(category, field, value) if {
	some a in alerts
	alert_enabled(a)
	covers_subscription(a)
	has_condition(a, "category", category)
	has_condition(a, field, value)
}

# operation_watched(operation): the Administrative operation raises an alert.
operation_watched(operation) if watched("Administrative", "operationName", operation)
