# Shared helpers for the posture rules. Rules read raw ARM JSON; these helpers keep the
# fiddly parts (case, port ranges, internet sources, related documents) in one place.
package scanledger.lib

import rego.v1

# ---------------------------------------------------------------------------------------
# Results

# finding(r, sub_item, details) is one `deny` entry for resource r.
finding(r, sub_item, details) := {"id": r.id, "sub_item": sub_item, "details": details}

# undecided(r, reason) is one `indeterminate` entry for resource r.
undecided(r, reason) := {"id": r.id, "reason": reason}

# ---------------------------------------------------------------------------------------
# Strings and properties

# ARM often sends null beside a value (e.g. `"category": null` next to a
# `categoryGroup`), and `lower(null)` or iterating null is an error in regorus: every
# helper here accepts any JSON value and simply does not match a non-string.

# eq_ci(a, b): case-insensitive equality of two strings (ARM enums and ids are
# case-insensitive); false for anything that is not a string.
eq_ci(a, b) if {
	is_string(a)
	is_string(b)
	lower(a) == lower(b)
}

# in_ci(s, set_of_lowercase): s is a string and one of the (lower-case) values.
in_ci(s, values) if {
	is_string(s)
	lower(s) in values
}

# obj(x): x if it is an object, else {} (null-safe navigation).
obj(x) := x if {
	is_object(x)
} else := {}

# arr(x): x if it is an array, else [] (null-safe iteration).
arr(x) := x if {
	is_array(x)
} else := []

# prop(r, path, fallback): r.properties.<path> (an array of keys), or fallback if absent.
# One builtin call, no helper: this is the most called helper of the catalogue. object.get
# yields fallback when a step of the path is missing or not an object (null properties).
prop(r, path, fallback) := object.get(r, array.concat(["properties"], path), fallback)

# has_prop(r, path): the property is present (even if null or false).
has_prop(r, path) if prop(r, path, "__absent__") != "__absent__"

# is_true(x) / is_false(x): booleans, also as ARM sometimes returns them ("true"/"false").
is_true(x) if x == true

is_true(x) if {
	is_string(x)
	lower(x) == "true"
}

is_false(x) if x == false

is_false(x) if {
	is_string(x)
	lower(x) == "false"
}

# enabled_str(x): "Enabled" (any case).
enabled_str(x) if {
	is_string(x)
	lower(x) == "enabled"
}

# ---------------------------------------------------------------------------------------
# Related documents (children and extensions fetched beside the resource)
#
# The source puts them under r.related[<path relative to the resource id>]:
#   present with an object or array -> the document(s)
#   present with null               -> ARM answered 404: none exists
#   absent                          -> not fetched (a call failed): undecidable

has_related(r, path) if path in object.keys(object.get(r, "related", {}))

related(r, path) := r.related[path]

# related_missing(r, path): rules report these resources as indeterminate.
related_missing(r, path) if not has_related(r, path)

# ---------------------------------------------------------------------------------------
# Networks

# Source prefixes meaning "anyone on the internet".
internet_sources := {"*", "0.0.0.0", "0.0.0.0/0", "internet", "any", "::/0", "::"}

is_internet(prefix) if {
	is_string(prefix)
	lower(trim_space(prefix)) in internet_sources
}

# as_list(x): x if it is an array, [x] for a non-empty string, [] otherwise.
as_list(x) := x if is_array(x)

as_list(x) := [x] if {
	is_string(x)
	x != ""
}

as_list(x) := [] if {
	not is_array(x)
	not is_string(x)
}

as_list(x) := [] if x == ""

# The source prefixes of an NSG security rule (singular and plural forms).
source_prefixes(rule) := array.concat(
	as_list(object.get(obj(rule.properties), "sourceAddressPrefix", [])),
	as_list(object.get(obj(rule.properties), "sourceAddressPrefixes", [])),
)

# The destination port ranges of an NSG security rule (singular and plural forms).
port_ranges(rule) := array.concat(
	as_list(object.get(obj(rule.properties), "destinationPortRange", [])),
	as_list(object.get(obj(rule.properties), "destinationPortRanges", [])),
)

# covers_port(range, port): an NSG port range ("*", "22", "20-30") includes port.
covers_port(range, _) if {
	is_string(range)
	trim_space(range) == "*"
}

covers_port(range, port) if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*$`, range)
	to_number(trim_space(range)) == port
}

covers_port(range, port) if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*-[ ]*[0-9]+[ ]*$`, range)
	parts := split(range, "-")
	to_number(trim_space(parts[0])) <= port
	port <= to_number(trim_space(parts[1]))
}

# range_width(range): how many ports a range spans (65536 for "*").
range_width(range) := 65536 if {
	is_string(range)
	trim_space(range) == "*"
}

range_width(range) := 1 if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*$`, range)
}

range_width(range) := w if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*-[ ]*[0-9]+[ ]*$`, range)
	parts := split(range, "-")
	w := (to_number(trim_space(parts[1])) - to_number(trim_space(parts[0]))) + 1
}

# protocol_covers(rule, proto): the rule's protocol is "*" or proto (e.g. "tcp").
protocol_covers(rule, proto) if in_ci(object.get(obj(rule.properties), "protocol", "*"), {"*", proto})

security_rules(nsg) := arr(object.get(obj(object.get(nsg, "properties", {})), "securityRules", []))

inbound(rule) if eq_ci(object.get(obj(rule.properties), "direction", ""), "Inbound")

allows(rule) if eq_ci(object.get(obj(rule.properties), "access", ""), "Allow")

denies(rule) if eq_ci(object.get(obj(rule.properties), "access", ""), "Deny")

from_internet(rule) if {
	some p in source_prefixes(rule)
	is_internet(p)
}

# A higher-priority (lower number) inbound Deny shadows an Allow for a port only when it
# covers everything the Allow admits there: the port and protocol, every internet
# source (`*`/Internet), every source port, and every destination (`*`, or the same
# destination prefixes). A narrower Deny (one host, one source port) leaves the Allow
# exposing the rest, so it does not count: a missed exposure is worse than a duplicate.
shadowed(nsg, allow_rule, port, proto) if {
	some d in security_rules(nsg)
	inbound(d)
	denies(d)
	from_internet(d)
	protocol_covers(d, proto)
	is_number(d.properties.priority)
	is_number(allow_rule.properties.priority)
	d.properties.priority < allow_rule.properties.priority
	some range in port_ranges(d)
	covers_port(range, port)
	all_source_ports(d)
	covers_destinations(d, allow_rule)
}

source_port_ranges(rule) := array.concat(
	as_list(object.get(obj(rule.properties), "sourcePortRange", [])),
	as_list(object.get(obj(rule.properties), "sourcePortRanges", [])),
)

# No source port given means any (ARM requires one, but be lenient).
all_source_ports(rule) if count(source_port_ranges(rule)) == 0

all_source_ports(rule) if {
	some r in source_port_ranges(rule)
	is_string(r)
	trim_space(r) == "*"
}

destination_prefixes(rule) := array.concat(
	as_list(object.get(obj(rule.properties), "destinationAddressPrefix", [])),
	as_list(object.get(obj(rule.properties), "destinationAddressPrefixes", [])),
)

covers_destinations(deny, _) if {
	some p in destination_prefixes(deny)
	in_ci(p, {"*", "any", "0.0.0.0/0"})
}

covers_destinations(deny, allow) if {
	allowed := {lower(p) | some p in destination_prefixes(allow); is_string(p)}
	denied := {lower(p) | some p in destination_prefixes(deny); is_string(p)}
	count(allowed) > 0
	count(allowed - denied) == 0
}

# port_bounds(range): [low, high] of an NSG port range ("*", "22", "20-30").
port_bounds(range) := [0, 65535] if {
	is_string(range)
	trim_space(range) == "*"
}

port_bounds(range) := [n, n] if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*$`, range)
	n := to_number(trim_space(range))
}

port_bounds(range) := [lo, hi] if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*-[ ]*[0-9]+[ ]*$`, range)
	parts := split(range, "-")
	lo := to_number(trim_space(parts[0]))
	hi := to_number(trim_space(parts[1]))
}

# internet_allow_ranges(nsg): every (inbound Allow rule from the internet, port range)
# with its bounds. Computed once per NSG, so checking many ports stays cheap (most NSGs
# have none, and the port checks then cost nothing).
internet_allow_ranges(nsg) := [c |
	some rule in security_rules(nsg)
	inbound(rule)
	allows(rule)
	sources := [p | some p in source_prefixes(rule); is_internet(p)]
	count(sources) > 0
	some range in port_ranges(rule)
	b := port_bounds(range)
	c := {"rule": rule, "range": range, "lo": b[0], "hi": b[1], "source": sources[0]}
]

# exposing_in(nsg, candidates, port, protos): of the candidates (internet_allow_ranges),
# the Allow rules that open port (for one of the protocols) and are not shadowed; each
# as {rule, port, matched_range, protocol, source, priority}.
exposing_in(nsg, candidates, port, protos) := {x |
	some c in candidates
	c.lo <= port
	port <= c.hi
	some proto in protos
	protocol_covers(c.rule, proto)
	not shadowed(nsg, c.rule, port, proto)
	x := {
		"rule": c.rule.name,
		"port": port,
		"matched_range": c.range,
		"protocol": object.get(obj(c.rule.properties), "protocol", "*"),
		"source": c.source,
		"priority": object.get(obj(c.rule.properties), "priority", null),
	}
}

# exposing_rules(nsg, port, protos): the inbound Allow rules that open port (for one of
# the protocols) to the internet and are not shadowed.
exposing_rules(nsg, port, protos) := exposing_in(nsg, internet_allow_ranges(nsg), port, protos)

# ---------------------------------------------------------------------------------------
# Diagnostic settings

# A diagnostic setting (ARM document) that sends the log `category` somewhere: either by
# name, or through the category groups `allLogs` or (for audit categories) `audit`.
setting_logs(setting) := arr(object.get(obj(object.get(obj(setting), "properties", {})), "logs", []))

logs_category(setting, category) if {
	some log in setting_logs(setting)
	is_true(object.get(obj(log), "enabled", false))
	eq_ci(object.get(obj(log), "category", ""), category)
}

logs_category(setting, _) if {
	some log in setting_logs(setting)
	is_true(object.get(obj(log), "enabled", false))
	eq_ci(object.get(obj(log), "categoryGroup", ""), "allLogs")
}

# logs_audit(setting): audit logs are sent (the `audit` or `allLogs` group).
logs_audit(setting) if {
	some log in setting_logs(setting)
	is_true(object.get(obj(log), "enabled", false))
	in_ci(object.get(obj(log), "categoryGroup", ""), {"audit", "alllogs"})
}

# has_destination(setting): the setting sends somewhere.
has_destination(setting) if {
	some key in ["workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "marketplacePartnerId"]
	v := object.get(obj(object.get(obj(setting), "properties", {})), key, "")
	is_string(v)
	v != ""
}

# ---------------------------------------------------------------------------------------
# Documents and private endpoints

# no_properties(r): the document carries no `properties` object. ARM always returns one,
# so its absence means a truncated document: rules report it as indeterminate rather than
# judge defaults they cannot see.
no_properties(r) if not is_object(object.get(r, "properties", null))

# approved_private_endpoints(r): the names (or ids) of the resource's private endpoint
# connections whose state is Approved (`properties.privateEndpointConnections[]
# .properties.privateLinkServiceConnectionState.status`, the shape Key Vault, Storage,
# Cosmos DB, Container Registry, AI Search and Recovery Services vaults return).
approved_private_endpoints(r) := {n |
	some c in arr(prop(r, ["privateEndpointConnections"], []))
	is_object(c)
	eq_ci(object.get(c, ["properties", "privateLinkServiceConnectionState", "status"], ""), "Approved")
	n := connection_name(c)
}

connection_name(c) := n if {
	n := object.get(c, "name", null)
	is_string(n)
} else := object.get(c, "id", "")
