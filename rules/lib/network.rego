# Helpers for the network rules (package scanledger.lib.network): NSG exposure read from
# the scanner's facts, and null-safe readers of sub-resources.
package scanledger.lib.network

import data.scanledger.lib
import rego.v1

# ---------------------------------------------------------------------------------------
# Internet exposure through an NSG
#
# The scanner computes, once per NSG and in Rust, which inbound Allow rules open which
# ports to the internet after higher-priority Denies (`r.facts.nsg.allows`; the exact
# shadowing rules are in src/scanner/facts.rs, checked against the Rego helpers they
# replaced by tests/facts.rs). The rules below only read them.

# services are objects {"port": 22, "protos": {"tcp"}, "service": "SSH"}.

# hits(nsg, services): every (NSG rule, service) pair: an inbound Allow from the internet
# that opens the port for one of the protocols and is not shadowed by a higher-priority
# Deny for that port.
hits(nsg, services) := {h |
	some a in nsg.facts.nsg.allows
	some o in a.open
	some s in services
	o.proto in s.protos
	o.lo <= s.port
	s.port <= o.hi
	h := {
		"rule": a.rule,
		"port": s.port,
		"matched_range": o.range,
		"protocol": a.protocol,
		"source": a.source,
		"priority": a.priority,
		"service": s.service,
	}
}

# exposures(nsg, services): one entry per offending NSG rule (its name is the stable
# sub_item), listing every service port it exposes. A rule yields one hit per (range,
# port); a rule with sources ["*", "Internet"] must still give one finding, not two with
# the same fingerprint and different details.
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

# wide_rules(nsg, min_width): inbound Allow rules from the internet (protocol `*`, TCP or
# UDP) whose destination port ranges that no single higher-priority Deny closes span at
# least min_width ports in total.
wide_rules(nsg, min_width) := {x |
	some a in nsg.facts.nsg.allows
	a.wide.ports >= min_width
	x := {
		"rule": a.rule,
		"priority": a.priority,
		"protocol": a.protocol,
		"sources": a.sources,
		"port_ranges": sort({r | some r in a.wide.open}),
		"ports_open": a.wide.ports,
	}
}

# udp_rules(nsg): inbound Allow rules from the internet whose protocol admits UDP (`Udp` or
# `*`) on at least one destination port range that no higher-priority internet Deny for
# UDP covers.
udp_rules(nsg) := {x |
	some a in nsg.facts.nsg.allows
	count(a.udp) > 0
	x := {
		"rule": a.rule,
		"priority": a.priority,
		"protocol": a.protocol,
		"sources": a.sources,
		"port_ranges": a.udp,
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
