# Shared helpers for the posture rules. Rules read raw ARM JSON; these helpers keep the
# fiddly parts (case, port ranges, internet sources, related documents) in one place.
package scanledger.lib

import rego.v1

# ---------------------------------------------------------------------------------------
# Results

# finding(r, sub_item, details) is one `deny` entry for resource r: [id, sub_item, details]
# (the scanner also reads {"id", "sub_item", "details"} objects; arrays are built and
# compared faster as a `deny` set grows).
finding(r, sub_item, details) := [r.id, sub_item, details]

# undecided(r, reason) is one `indeterminate` entry for resource r: [id, reason].
undecided(r, reason) := [r.id, reason]

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

# A lookup, not `path in object.keys(...)`: that built the set of every related path per
# call (25 calls per storage account). A `related` that is not an object holds nothing.
has_related(r, path) if {
	_ = r.related[path]
}

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

# exposing_rules(nsg, port, protos): the inbound Allow rules that open port to the internet
# for one of the protocols ("tcp", "udp") and are not shadowed by a higher-priority Deny,
# each as {rule, port, matched_range, protocol, source, priority}. Read from the NSG's
# facts (`nsg.facts.nsg.allows`, computed by the scanner: src/scanner/facts.rs says
# exactly when a Deny shadows an Allow), so checking many ports costs a few comparisons.
exposing_rules(nsg, port, protos) := {x |
	some a in nsg.facts.nsg.allows
	some o in a.open
	o.proto in protos
	o.lo <= port
	port <= o.hi
	x := {
		"rule": a.rule,
		"port": port,
		"matched_range": o.range,
		"protocol": a.protocol,
		"source": a.source,
		"priority": a.priority,
	}
}

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
