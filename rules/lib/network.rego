# Helpers for the network rules (package scanledger.lib.network), built on the shared
# NSG helpers of lib/azure.rego (exposing_rules, port_ranges, range_width, ...).
package scanledger.lib.network

import data.scanledger.lib
import rego.v1

# ---------------------------------------------------------------------------------------
# Internet exposure of named services through an NSG

# services are objects {"port": 22, "protos": {"tcp"}, "service": "SSH"}.

# allow_ranges: lib.internet_allow_ranges of every NSG in the input, by id. A rule, not a
# function, so it is evaluated once per query: the scanner evaluates all NSG rules of a
# chunk in one query, so the eight port rules share it instead of each recomputing it.
allow_ranges := {r.id: lib.internet_allow_ranges(r) | some r in input.resources}

# hits(nsg, services): every (NSG rule, service) pair lib.exposing_rules reports, i.e. an
# inbound Allow from the internet that opens the port for one of the protocols and is not
# shadowed by a higher-priority Deny.
hits(nsg, services) := {h |
	candidates := allow_ranges[nsg.id]
	count(candidates) > 0
	some s in services
	some x in lib.exposing_in(nsg, candidates, s.port, s.protos)
	h := object.union(x, {"service": s.service})
}

# exposures(nsg, services): one entry per offending NSG rule (its name is the stable
# sub_item), listing every service port it exposes. lib.exposing_rules yields one entry
# per (source, range) pair; a rule with sources ["*", "Internet"] must still give one
# finding, not two with the same fingerprint and different details.
exposures(nsg, services) := {e |
	hs := hits(nsg, services)
	some name in {h.rule | some h in hs}
	mine := {h | some h in hs; h.rule == name}
	e := {
		"rule": name,
		"priority": max({h.priority | some h in mine}),
		"sources": sort({h.source | some h in mine}),
		"exposed": sort({p |
			some h in mine
			p := {"port": h.port, "service": h.service, "protocol": h.protocol, "matched_range": h.matched_range}
		}),
	}
}

# ---------------------------------------------------------------------------------------
# Wide port ranges open to the internet

# range_bounds(range): [low, high] of an NSG port range ("*", "22", "20-30").
range_bounds(range) := [0, 65535] if {
	is_string(range)
	trim_space(range) == "*"
}

range_bounds(range) := [n, n] if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*$`, range)
	n := to_number(trim_space(range))
}

range_bounds(range) := [lo, hi] if {
	is_string(range)
	regex.match(`^[ ]*[0-9]+[ ]*-[ ]*[0-9]+[ ]*$`, range)
	parts := split(range, "-")
	lo := to_number(trim_space(parts[0]))
	hi := to_number(trim_space(parts[1]))
}

# Protocols whose rules open ports ("*" covers TCP and UDP); ICMP, ESP and AH have none.
port_protocols := {"*", "tcp", "udp"}

rule_protocol(rule) := lower_str(object.get(lib.obj(rule.properties), "protocol", "*"))

# range_shadowed(nsg, allow, range): a higher-priority inbound Deny from the internet,
# for every protocol the Allow opens, every source port and at least the Allow's
# destinations, covers the whole range. (A Deny whose ranges only cover it together is not
# counted: the rule may then over-report, never under-report. Unlike lib.shadowed, a Deny
# aimed at one host does not hide an Allow to every host.)
range_shadowed(nsg, allow, range) if range_shadowed_for(nsg, allow, range, rule_protocol(allow))

# range_shadowed_for(nsg, allow, range, proto): as range_shadowed, for the traffic of one
# protocol the Allow opens (a Deny for UDP alone closes the UDP half of a `*` Allow).
range_shadowed_for(nsg, allow, range, proto) if {
	a := range_bounds(range)
	some d in lib.security_rules(nsg)
	lib.inbound(d)
	lib.denies(d)
	lib.from_internet(d)
	lib.protocol_covers(d, proto)
	all_source_ports(d)
	covers_destinations(d, allow)
	is_number(d.properties.priority)
	is_number(allow.properties.priority)
	d.properties.priority < allow.properties.priority
	some dr in lib.port_ranges(d)
	b := range_bounds(dr)
	b[0] <= a[0]
	a[1] <= b[1]
}

# The destinations of a security rule: lower-cased address prefixes and ASG ids.
dest_prefixes(rule) := {lower(p) |
	props := lib.obj(rule.properties)
	some p in array.concat(
		lib.as_list(object.get(props, "destinationAddressPrefix", [])),
		lib.as_list(object.get(props, "destinationAddressPrefixes", [])),
	)
	is_string(p)
}

dest_asgs(rule) := {lower(ref_id(g)) | some g in lib.arr(object.get(lib.obj(rule.properties), "destinationApplicationSecurityGroups", []))}

any_destination := {"*", "0.0.0.0/0", "any"}

# covers_destinations(deny, allow): the Deny applies to every destination the Allow opens.
covers_destinations(d, _) if {
	count(dest_asgs(d)) == 0
	some p in dest_prefixes(d)
	p in any_destination
}

covers_destinations(d, allow) if {
	count(dest_asgs(allow)) == 0
	count(dest_prefixes(allow)) > 0
	every p in dest_prefixes(allow) {
		p in dest_prefixes(d)
	}
}

covers_destinations(d, allow) if {
	count(dest_prefixes(allow)) == 0
	count(dest_asgs(allow)) > 0
	every g in dest_asgs(allow) {
		g in dest_asgs(d)
	}
}

# all_source_ports(rule): the rule matches every source port ("*", or none given).
all_source_ports(rule) if {
	props := lib.obj(rule.properties)
	ranges := array.concat(
		lib.as_list(object.get(props, "sourcePortRange", [])),
		lib.as_list(object.get(props, "sourcePortRanges", [])),
	)
	count(ranges) == 0
}

all_source_ports(rule) if {
	props := lib.obj(rule.properties)
	some r in array.concat(
		lib.as_list(object.get(props, "sourcePortRange", [])),
		lib.as_list(object.get(props, "sourcePortRanges", [])),
	)
	is_string(r)
	trim_space(r) == "*"
}

# wide_rules(nsg, min_width): inbound Allow rules from the internet whose unshadowed
# destination port ranges span at least min_width ports in total.
wide_rules(nsg, min_width) := {x |
	some rule in lib.security_rules(nsg)
	lib.inbound(rule)
	lib.allows(rule)
	rule_protocol(rule) in port_protocols
	sources := sort({s | some s in lib.source_prefixes(rule); lib.is_internet(s)})
	count(sources) > 0
	open := sort({r | some r in lib.port_ranges(rule); not range_shadowed(nsg, rule, r)})
	width := min({65536, sum([lib.range_width(r) | some r in open])})
	width >= min_width
	x := {
		"rule": rule.name,
		"priority": object.get(lib.obj(rule.properties), "priority", null),
		"protocol": object.get(lib.obj(rule.properties), "protocol", "*"),
		"sources": sources,
		"port_ranges": open,
		"ports_open": width,
	}
}

# udp_rules(nsg): inbound Allow rules from the internet whose protocol admits UDP (`Udp` or
# `*`) on at least one destination port range that no higher-priority internet Deny for
# UDP covers.
udp_rules(nsg) := {x |
	some rule in lib.security_rules(nsg)
	lib.inbound(rule)
	lib.allows(rule)
	rule_protocol(rule) in {"*", "udp"}
	sources := sort({s | some s in lib.source_prefixes(rule); lib.is_internet(s)})
	count(sources) > 0
	open := sort({r | some r in lib.port_ranges(rule); range_bounds(r); not range_shadowed_for(nsg, rule, r, "udp")})
	count(open) > 0
	x := {
		"rule": rule.name,
		"priority": object.get(lib.obj(rule.properties), "priority", null),
		"protocol": object.get(lib.obj(rule.properties), "protocol", "*"),
		"sources": sources,
		"port_ranges": open,
	}
}

# ---------------------------------------------------------------------------------------
# Small helpers

# ref_id(x): the "id" of an ARM sub-resource reference, "" when absent or empty.
ref_id(x) := id if {
	is_object(x)
	id := object.get(x, "id", "")
	is_string(id)
} else := ""

# has_ref(x): x is a reference with a non-empty id.
has_ref(x) if ref_id(x) != ""

# non_empty(x): x is an array with at least one element.
non_empty(x) if {
	is_array(x)
	count(x) > 0
}

# is_ci(x, s): x is a string equal to s ignoring case. Unlike lib.eq_ci it is simply
# false (never an error) when a document holds null or a number where a string belongs.
is_ci(x, s) if {
	is_string(x)
	lower(x) == lower(s)
}

# lower_str(x): lower(x) for a string, "" for anything else.
lower_str(x) := lower(x) if {
	is_string(x)
} else := ""

# sub_props(x): the `properties` object of a sub-resource (subnet, listener, peering...),
# {} when x or its properties are missing or not objects, so object.get never errors.
sub_props(x) := p if {
	is_object(x)
	p := object.get(x, "properties", {})
	is_object(p)
} else := {}
