# Helpers for the database rules (Azure SQL, PostgreSQL / MySQL flexible servers, Cosmos DB).
# Only rules under rules/database/ import this package.
package scanledger.lib.database

import data.scanledger.lib
import rego.v1

# ---------------------------------------------------------------------------------------
# Small value helpers

# str(x): x when it is a string, "" otherwise (so lower() never sees null or a number).
str(x) := x if {
	is_string(x)
} else := ""

# lstr(x): lower-cased, trimmed string form of x ("" for non-strings).
lstr(x) := lower(trim_space(x)) if {
	is_string(x)
} else := ""

# obj(x): x when it is an object, {} otherwise.
obj(x) := x if {
	is_object(x)
} else := {}

# arr(x): x when it is an array, [] otherwise (null, absent, or a malformed value).
arr(x) := x if {
	is_array(x)
} else := []

# nonempty(x): a string with something in it.
nonempty(x) if lstr(x) != ""

# num(x): x as a number when it is a number or a numeric string; undefined otherwise.
num(x) := x if is_number(x)

num(x) := to_number(trim_space(x)) if {
	is_string(x)
	regex.match(`^[ ]*[0-9]+[ ]*$`, x)
}

# replica(r): a read replica of a flexible server (HA and backups are the primary's concern).
replica(r) if contains(lstr(lib.prop(r, ["replicationRole"], "")), "replica")

# ---------------------------------------------------------------------------------------
# IPv4 arithmetic for server-level firewall rules (startIpAddress / endIpAddress)

# ipv4_int(s): a dotted-quad IPv4 address as an integer; undefined for anything else.
ipv4_int(s) := n if {
	is_string(s)
	t := trim_space(s)
	regex.match(`^[0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}$`, t)
	p := [to_number(x) | some x in split(t, ".")]
	every x in p {
		x <= 255
	}
	n := ((((p[0] * 256) + p[1]) * 256) + p[2]) * 256 + p[3]
}

# Address blocks a public endpoint never sees as a client source (RFC 1918, CGNAT, loopback):
# a wide rule that stays inside one of them exposes nothing to the internet.
non_public_blocks := [
	["10.0.0.0", "10.255.255.255"],
	["172.16.0.0", "172.31.255.255"],
	["192.168.0.0", "192.168.255.255"],
	["100.64.0.0", "100.127.255.255"],
	["127.0.0.0", "127.255.255.255"],
]

within_non_public(start, end) if {
	some b in non_public_blocks
	ipv4_int(b[0]) <= start
	end <= ipv4_int(b[1])
}

# A rule admitting at least a /8 worth of addresses (16,777,216) counts as open to the
# internet: no organisation owns such a range, so it can only mean "everyone".
wide_rule_addresses := 16777216

# firewall_rules(r): the server's firewall rules from the related list (null: none exist).
firewall_rules(r) := rules if {
	rules := lib.related(r, "firewallRules")
	is_array(rules)
}

firewall_rules(r) := [] if lib.related(r, "firewallRules") == null

# open_firewall_rules(r): rules whose start/end range spans the internet (or a very wide
# slice of it), e.g. 0.0.0.0-255.255.255.255 or 1.0.0.0-254.255.255.255.
open_firewall_rules(r) := {x |
	some rule in firewall_rules(r)
	is_object(rule)
	start := ipv4_int(object.get(rule, ["properties", "startIpAddress"], ""))
	end := ipv4_int(object.get(rule, ["properties", "endIpAddress"], ""))
	addresses := (end - start) + 1
	addresses >= wide_rule_addresses
	not within_non_public(start, end)
	x := {
		"rule": object.get(rule, "name", ""),
		"startIpAddress": rule.properties.startIpAddress,
		"endIpAddress": rule.properties.endIpAddress,
		"addresses": addresses,
	}
}

# azure_services_rules(r): the 0.0.0.0-0.0.0.0 rule ("Allow Azure services and resources to
# access this server"), which admits connections from any Azure tenant's resources.
azure_services_rules(r) := {x |
	some rule in firewall_rules(r)
	is_object(rule)
	trim_space(str(object.get(rule, ["properties", "startIpAddress"], ""))) == "0.0.0.0"
	trim_space(str(object.get(rule, ["properties", "endIpAddress"], ""))) == "0.0.0.0"
	x := {
		"rule": object.get(rule, "name", ""),
		"startIpAddress": "0.0.0.0",
		"endIpAddress": "0.0.0.0",
	}
}

# ---------------------------------------------------------------------------------------
# Public network access

# Azure SQL: `publicNetworkAccess` is optional in the API; servers that predate it (or never
# set it) have a public endpoint, so absent means Enabled. `Disabled` leaves only private
# endpoints; `SecuredByPerimeter` hands access control to a network security perimeter.
# In both cases the server's IP firewall rules are not what admits clients.
sql_public_access(r) := lstr(lib.prop(r, ["publicNetworkAccess"], "Enabled"))

sql_firewall_applies(r) if not sql_public_access(r) in {"disabled", "securedbyperimeter"}

# Flexible servers (PostgreSQL, MySQL): `network.publicNetworkAccess` is Enabled or Disabled.
# A server integrated into a VNet (delegatedSubnetResourceId) never has public access.
# Returns "enabled", "disabled" or "unknown".
flexible_public_access(r) := v if {
	v := lstr(lib.prop(r, ["network", "publicNetworkAccess"], ""))
	v != ""
}

flexible_public_access(r) := "disabled" if {
	lstr(lib.prop(r, ["network", "publicNetworkAccess"], "")) == ""
	nonempty(lib.prop(r, ["network", "delegatedSubnetResourceId"], ""))
}

flexible_public_access(r) := "unknown" if {
	lstr(lib.prop(r, ["network", "publicNetworkAccess"], "")) == ""
	not nonempty(lib.prop(r, ["network", "delegatedSubnetResourceId"], ""))
}

# Firewall rules only admit clients while public access is on (or not known to be off).
flexible_firewall_applies(r) if flexible_public_access(r) != "disabled"

# ---------------------------------------------------------------------------------------
# Server parameters of flexible servers (related `configurations/<name>`)

config_path(name) := concat("", ["configurations/", name])

# config_value(r, name): the parameter's value, lower-cased and trimmed; undefined when the
# document is missing, null (no such parameter on this server) or has no string value.
config_value(r, name) := lower(trim_space(v)) if {
	doc := lib.related(r, config_path(name))
	is_object(doc)
	v := object.get(doc, ["properties", "value"], null)
	is_string(v)
}

# config_undecidable(r, name): the parameter was fetched but its value cannot be read.
config_undecidable(r, name) if {
	lib.has_related(r, config_path(name))
	not config_value(r, name)
}

# ---------------------------------------------------------------------------------------
# Azure SQL Microsoft Entra administrators

# The inline `administrators` object (returned only with $expand=administrators/activedirectory)
# when it names a principal.
sql_inline_admin(r) := a if {
	a := lib.prop(r, ["administrators"], null)
	is_object(a)
	entra_principal(a)
}

entra_principal(a) if nonempty(object.get(a, "sid", ""))

entra_principal(a) if nonempty(object.get(a, "login", ""))

# sql_admin_list(r): the related `administrators` list (null: none configured).
sql_admin_list(r) := l if {
	l := lib.related(r, "administrators")
	is_array(l)
}

sql_admin_list(r) := [] if lib.related(r, "administrators") == null

# sql_entra_admins(r): the Entra administrators' property objects, from either source.
sql_entra_admins(r) := {a |
	a := sql_inline_admin(r)
} | {a |
	some doc in sql_admin_list(r)
	a := obj(object.get(obj(doc), "properties", {}))
	entra_principal(a)
}

# Whether the absence of an admin can be trusted: the list was fetched.
sql_admins_known(r) if count(sql_entra_admins(r)) > 0

sql_admins_known(r) if lib.has_related(r, "administrators")

# ---------------------------------------------------------------------------------------
# Azure SQL vulnerability assessment (related documents of Microsoft.Sql/servers)
#
# Two configurations: the express one (`sqlVulnerabilityAssessments/default`, state
# Enabled: scans run by themselves and results go to Defender for Cloud, no storage
# account), the default since 2023 when Defender for SQL is enabled; and the classic one
# (`vulnerabilityAssessments/default` with a `storageContainerPath`, its own recurring
# scans and e-mail settings).

va_path := "vulnerabilityAssessments/default"

va_express_path := "sqlVulnerabilityAssessments/default"

# va_express_on(r): the express configuration is enabled.
va_express_on(r) if {
	lib.has_related(r, va_express_path)
	lstr(object.get(obj(lib.related(r, va_express_path)), ["properties", "state"], "")) == "enabled"
}

# va_classic(r): the classic configuration's properties ({} when none is stored).
va_classic(r) := obj(object.get(obj(lib.related(r, va_path)), "properties", {})) if lib.has_related(r, va_path)

# va_classic_on(r): the classic configuration stores scan results in a storage container.
va_classic_on(r) if nonempty(object.get(va_classic(r), "storageContainerPath", ""))

# va_classic_only(r): classic is configured and express is known to be off, so the classic
# recurring-scan and e-mail settings are what applies.
va_classic_only(r) if {
	va_classic_on(r)
	lib.has_related(r, va_express_path)
	not va_express_on(r)
}

# nonblank_strings(x): the non-empty strings of an array (ARM sends [""] for "none").
nonblank_strings(x) := [s | some s in arr(x); nonempty(s)]
