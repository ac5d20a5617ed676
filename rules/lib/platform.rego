# Helpers for the aks, acr, monitoring and defender rules. Everything here is null-safe:
# ARM often returns unset properties as `null`, and `lower(null)` is an evaluation error in
# regorus (strict builtins), which would turn a rule into `errored` for that resource.
package scanledger.lib.platform

import data.scanledger.lib
import rego.v1

# ---------------------------------------------------------------------------------------
# Strings and flags

# str_eq(x, s): x is a string equal to s, ignoring case. False (not an error) for null,
# numbers, objects.
str_eq(x, s) if {
	is_string(x)
	lower(trim_space(x)) == lower(s)
}

# str_in(x, values): x is a string whose lower-case form is in the lower-case set.
str_in(x, values) if {
	is_string(x)
	lower(trim_space(x)) in values
}

# on(x): a switch that is on, however ARM spells it: true, "true", "Enabled", "On".
on(x) if x == true

on(x) if str_in(x, {"true", "enabled", "on"})

# off(x): a switch that is explicitly off: false, "false", "Disabled", "Off".
off(x) if x == false

off(x) if str_in(x, {"false", "disabled", "off"})

# blank(x): absent-like: null, "" or an empty object/array.
blank(x) if x == null

blank(x) if x == ""

blank(x) if {
	is_object(x)
	count(x) == 0
}

blank(x) if {
	is_array(x)
	count(x) == 0
}

# obj(x): x if it is an object, {} otherwise (so object.get never sees null).
obj(x) := x if {
	is_object(x)
} else := {}

# values_ci(o, key): the values stored in object o under `key`, matching the key
# case-insensitively (addonProfiles spells `azurepolicy` and `azurePolicy` depending on the
# API version; Application Insights `DisableLocalAuth`/`disableLocalAuth`). An array, so two
# spellings in one document cannot make the helper produce conflicting outputs.
values_ci(o, key) := [v |
	is_object(o)
	some k, v in o
	is_string(k)
	lower(k) == lower(key)
]

# ---------------------------------------------------------------------------------------
# Resources

# sku_name(r): the lower-case SKU name ("premium", "basic", ...), "" if unknown.
sku_name(r) := lower(n) if {
	n := object.get(obj(object.get(r, "sku", {})), "name", "")
	is_string(n)
}

sku_name(r) := "" if {
	n := object.get(obj(object.get(r, "sku", {})), "name", "")
	not is_string(n)
}

# last_segment(id): the last path segment of a resource id.
last_segment(id) := s if {
	parts := split(trim_right(id, "/"), "/")
	s := parts[count(parts) - 1]
}

# subscription_of(id): the lower-case subscription id of a resource id.
subscription_of(id) := lower(parts[2]) if {
	parts := split(id, "/")
	lower(parts[1]) == "subscriptions"
}

# subscription_scoped(r, provider_type): r is the extension resource
# /subscriptions/<sub>/providers/<provider_type>/<name> itself (not one attached to a
# resource group or a resource). provider_type is lower-case with escaped dots, e.g.
# `microsoft\.security/pricings`.
subscription_scoped(r, provider_type) if {
	is_string(r.id)
	regex.match(sprintf(`^/subscriptions/[^/]+/providers/%s/[^/]+$`, [provider_type]), lower(trim_right(r.id, "/")))
}

# ---------------------------------------------------------------------------------------
# Diagnostic settings (a null-safe take on lib.logs_category: ARM returns entries such as
# {"category": null, "categoryGroup": "allLogs", "enabled": true}).

# sends_category(setting, category): the setting sends the log category by name or
# through the `allLogs` category group.
sends_category(setting, category) if {
	some log in object.get(obj(object.get(setting, "properties", {})), "logs", [])
	is_object(log)
	lib.is_true(object.get(log, "enabled", false))
	str_eq(object.get(log, "category", null), category)
}

sends_category(setting, _) if {
	some log in object.get(obj(object.get(setting, "properties", {})), "logs", [])
	is_object(log)
	lib.is_true(object.get(log, "enabled", false))
	str_eq(object.get(log, "categoryGroup", null), "allLogs")
}

# has_destination(setting): the setting names a workspace, storage account, event hub or
# partner solution.
has_destination(setting) if {
	props := obj(object.get(setting, "properties", {}))
	some key in ["workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "marketplacePartnerId"]
	v := object.get(props, key, null)
	is_string(v)
	trim_space(v) != ""
}

# ---------------------------------------------------------------------------------------
# Microsoft Defender for Cloud plans (Microsoft.Security/pricings)

# A subscription-level pricing: /subscriptions/<sub>/providers/Microsoft.Security/pricings/<Plan>.
# Resource-level pricings (a single VM excluded from or added to a plan) are not judged here.
subscription_pricing(r) if subscription_scoped(r, `microsoft\.security/pricings`)

# is_plan(r, plan): r is the subscription's pricing for `plan` (matched case-insensitively
# on the id's last segment, which is the plan name).
is_plan(r, plan) if {
	subscription_pricing(r)
	lower(last_segment(r.id)) == lower(plan)
}

# free_plan(r, plan): details when the plan is on the Free tier (Defender plan off).
free_plan(r, plan) := details if {
	is_plan(r, plan)
	tier := lib.prop(r, ["pricingTier"], null)
	str_eq(tier, "Free")
	details := {
		"plan": plan,
		"pricingTier": tier,
		"subPlan": lib.prop(r, ["subPlan"], null),
	}
}

# tier_unknown(r, plan): the plan's pricing document carries no usable pricingTier.
tier_unknown(r, plan) if {
	is_plan(r, plan)
	tier := lib.prop(r, ["pricingTier"], null)
	not str_in(tier, {"free", "standard"})
}

# ---------------------------------------------------------------------------------------
# Defender for Cloud security contacts (Microsoft.Security/securityContacts). Three shapes:
#   2017-08-01-preview: {email, phone, alertNotifications: "On"|"Off", alertsToAdmins: "On"|"Off"}
#   2020-01-01-preview: {emails: "a@x;b@y", alertNotifications: {state, minimalSeverity},
#                        notificationsByRole: {state, roles: [...]}}
#   2023-12-01-preview: {emails, isEnabled, notificationsSources: [{sourceType: "Alert",
#                        minimalSeverity}, {sourceType: "AttackPath", minimalRiskLevel}],
#                        notificationsByRole: {state, roles}}

# contact_emails(r): the non-empty addresses of `emails` (";"- or ","-separated) and `email`.
contact_emails(r) := {trim_space(e) |
	some key in ["emails", "email"]
	v := lib.prop(r, [key], null)
	is_string(v)
	some e in split(replace(v, ",", ";"), ";")
	trim_space(e) != ""
}

# contact_disabled(r): the 2023-12-01-preview switch for the whole contact is off.
contact_disabled(r) if off(lib.prop(r, ["isEnabled"], null))

# alert_source(r): a notificationsSources entry of type Alert (2023-12-01-preview).
alert_source(r) := s if {
	sources := lib.prop(r, ["notificationsSources"], [])
	is_array(sources)
	some s in sources
	is_object(s)
	str_eq(object.get(s, "sourceType", null), "Alert")
}

# alerts_known(r): the document says, in one of the shapes, whether alert e-mails are sent.
alerts_known(r) if lib.has_prop(r, ["notificationsSources"])

alerts_known(r) if lib.has_prop(r, ["isEnabled"])

alerts_known(r) if lib.has_prop(r, ["alertNotifications"])

# alerts_on(r): alert e-mail notifications are sent (any minimal severity: Low, Medium and
# High all include high-severity alerts).
alerts_on(r) if {
	not contact_disabled(r)
	alert_source(r)
}

alerts_on(r) if {
	not contact_disabled(r)
	an := lib.prop(r, ["alertNotifications"], null)
	is_object(an)
	on(object.get(an, "state", null))
}

alerts_on(r) if {
	not contact_disabled(r)
	on(lib.prop(r, ["alertNotifications"], null))
}

# roles_known(r): the document says whether role holders (or admins) are e-mailed.
roles_known(r) if lib.has_prop(r, ["notificationsByRole"])

roles_known(r) if lib.has_prop(r, ["alertsToAdmins"])

roles_known(r) if contact_disabled(r)

# owners_notified(r): subscription Owners receive the e-mails.
owners_notified(r) if {
	not contact_disabled(r)
	nbr := lib.prop(r, ["notificationsByRole"], null)
	is_object(nbr)
	on(object.get(nbr, "state", null))
	roles := object.get(nbr, "roles", [])
	is_array(roles)
	some role in roles
	str_eq(role, "Owner")
}

# 2017-08-01-preview: alertsToAdmins sent alerts to the subscription's administrators.
owners_notified(r) if {
	not contact_disabled(r)
	on(lib.prop(r, ["alertsToAdmins"], null))
}

# ---------------------------------------------------------------------------------------
# AKS API server exposure (Microsoft.ContainerService/managedClusters)

# aks_private(r): the API server has no public endpoint: a private cluster, or public
# network access disabled on the cluster.
aks_private(r) if lib.is_true(lib.prop(r, ["apiServerAccessProfile", "enablePrivateCluster"], false))

aks_private(r) if str_eq(lib.prop(r, ["publicNetworkAccess"], null), "Disabled")

# aks_ranges(r): the authorized IP ranges of a public API server ([] when none).
aks_ranges(r) := [x |
	ranges := lib.prop(r, ["apiServerAccessProfile", "authorizedIPRanges"], [])
	is_array(ranges)
	some x in ranges
	is_string(x)
	trim_space(x) != ""
]

# aks_open_ranges(r): authorized ranges that admit the whole internet.
aks_open_ranges(r) := [x |
	some x in aks_ranges(r)
	open_range(x)
]

open_range(x) if lib.is_internet(x)

open_range(x) if {
	is_string(x)
	endswith(trim_space(x), "/0")
}

# aks_public_unrestricted(r): the API server is public and reachable from any address.
aks_public_unrestricted(r) if {
	not aks_private(r)
	count(aks_ranges(r)) == 0
}

aks_public_unrestricted(r) if {
	not aks_private(r)
	count(aks_open_ranges(r)) > 0
}

# aks_public_restricted(r): public, but only from the authorized ranges.
aks_public_restricted(r) if {
	not aks_private(r)
	count(aks_ranges(r)) > 0
	count(aks_open_ranges(r)) == 0
}

# ---------------------------------------------------------------------------------------
# Container registries (Microsoft.ContainerRegistry/registries)

# acr_premium(r): a Premium registry (network rules, retention, quarantine, export policy
# and content trust exist only on Premium).
acr_premium(r) if sku_name(r) == "premium"

# acr_policy_status(r, policy): properties.policies.<policy>.status, or null.
acr_policy_status(r, policy) := lib.prop(r, ["policies", policy, "status"], null)

# ---------------------------------------------------------------------------------------
# Defender plan extensions (Microsoft.Security/pricings 2024-01-01 `properties.extensions`:
# [{name, isEnabled: "True"|"False", additionalExtensionProperties}])

# plan_on(r, plan): the subscription's pricing for the plan is on the Standard tier.
plan_on(r, plan) if {
	is_plan(r, plan)
	str_eq(lib.prop(r, ["pricingTier"], null), "Standard")
}

# extension_state(r, name): "on", "off" (listed and not enabled, or not listed while the
# document lists extensions) or "unknown" (the document carries no extensions list: an API
# version before 2023-01-01, or a plan that has none).
extension_state(r, name) := "on" if extension_on(r, name)

extension_state(r, name) := "off" if {
	not extension_on(r, name)
	is_array(lib.prop(r, ["extensions"], null))
}

extension_state(r, name) := "unknown" if {
	not extension_on(r, name)
	not is_array(lib.prop(r, ["extensions"], null))
}

extension_on(r, name) if {
	some e in lib.arr(lib.prop(r, ["extensions"], null))
	str_eq(object.get(e, "name", null), name)
	on(object.get(e, "isEnabled", null))
}
