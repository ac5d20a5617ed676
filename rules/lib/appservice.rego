# Helpers for the App Service rules (Microsoft.Web/sites: web apps, API apps, function
# apps, Logic Apps Standard; and their deployment slots, Microsoft.Web/sites/slots, which
# ARM returns in the same Site shape with the same config/web, config/authsettingsV2,
# basicPublishingCredentialsPolicies and privateEndpointConnections children: a staging
# slot serves traffic on its own host name, so every site rule applies to it). Resource Graph leaves most of a site's siteConfig null, so
# the rules read the site configuration from the related `config/web` document.
package scanledger.lib.appservice

import data.scanledger.lib
import rego.v1

# api-version of every related Microsoft.Web document the rules read (keep them equal:
# a path declared twice with two versions would be fetched with only one).
api := "2023-12-01"

# Null-safe helpers (regorus errors on lower(null) and on `some x in null`).
str(x) := x if {
	is_string(x)
} else := ""

lc(x) := lower(x) if {
	is_string(x)
} else := ""

obj(x) := x if {
	is_object(x)
} else := {}

arr(x) := x if {
	is_array(x)
} else := []

get(x, path) := object.get(x, path, null) if {
	is_object(x)
} else := null

# is_function_app(r): Azure Functions and Logic Apps Standard ("functionapp,workflowapp")
# sites; their kind contains "functionapp".
is_function_app(r) if contains(lc(object.get(r, "kind", "")), "functionapp")

# ---------------------------------------------------------------------------------------
# Site configuration (related `config/web`)

# has_config(r): the config/web document was fetched. A null (404) cannot happen for an
# existing site, so it is treated like a failed fetch: undecidable.
has_config(r) if site_configs[r.id].fetched

config_unknown(r) if not has_config(r)

# config(r): the site configuration's properties.
config(r) := site_configs[r.id].config

# site_configs: has_config and config of every site of the input, by id. A rule, not a
# function, so it is computed once per query: the scanner evaluates all App Service rules
# of a chunk in one query, and nearly all of them read the configuration.
site_configs := {r.id: {"fetched": fetched, "config": config_of(r, fetched)} |
	some r in input.resources
	fetched := config_fetched(r)
}

config_fetched(r) := true if config_present(r)

config_fetched(r) := false if not config_present(r)

config_present(r) if {
	lib.has_related(r, "config/web")
	is_object(lib.related(r, "config/web"))
}

config_of(r, fetched) := obj(get(lib.related(r, "config/web"), ["properties"])) if fetched

config_of(_, fetched) := {} if not fetched

# ---------------------------------------------------------------------------------------
# TLS versions ("1.0", "1.1", "1.2", "1.3"; parsed safely: to_number errors on non-numbers)

weak_tls(v) if str(v) in {"1.0", "1.1"}

# ---------------------------------------------------------------------------------------
# Publishing credentials (related `basicPublishingCredentialsPolicies/ftp` and `/scm`)

pub_path(kind) := concat("/", ["basicPublishingCredentialsPolicies", kind])

# basic_auth_allowed(r, kind): basic authentication is allowed for "ftp" or "scm". A
# policy that does not exist (null) falls back to Azure's default, which allows it.
basic_auth_allowed(r, kind) if {
	lib.has_related(r, pub_path(kind))
	lib.related(r, pub_path(kind)) == null
}

basic_auth_allowed(r, kind) if {
	lib.has_related(r, pub_path(kind))
	lib.is_true(get(lib.related(r, pub_path(kind)), ["properties", "allow"]))
}

basic_auth_denied(r, kind) if {
	lib.has_related(r, pub_path(kind))
	lib.is_false(get(lib.related(r, pub_path(kind)), ["properties", "allow"]))
}

basic_auth_unknown(r, kind) if lib.related_missing(r, pub_path(kind))

# ---------------------------------------------------------------------------------------
# Identity

# has_managed_identity(x): a system- or user-assigned identity (type "None" or absent: no).
has_managed_identity(x) if {
	t := lc(get(x, ["identity", "type"]))
	t != ""
	t != "none"
}

# ---------------------------------------------------------------------------------------
# Language runtimes (config/web: linuxFxVersion "PHP|8.2", "PYTHON|3.12", "JAVA|17-java17",
# "TOMCAT|10.1-java17"; Windows phpVersion "8.2", pythonVersion "3.4", javaVersion "17")

# stack_version(r, stack): the version the site runs for a stack ("php", "python",
# "java"), from linuxFxVersion or the Windows setting; undefined when the site does not
# run it. Java: the JRE version of JAVA|, TOMCAT|, JBOSSEAP| images (after "-java").
stack_version(r, stack) := v if {
	fx := lc(get(config(r), ["linuxFxVersion"]))
	startswith(fx, concat("", [stack, "|"]))
	stack != "java"
	v := trim_space(substring(fx, count(stack) + 1, -1))
}

stack_version(r, "java") := v if {
	fx := lc(get(config(r), ["linuxFxVersion"]))
	contains(fx, "|")
	contains(fx, "-java")
	parts := split(fx, "-java")
	v := trim_space(parts[count(parts) - 1])
}

stack_version(r, "java") := v if {
	fx := lc(get(config(r), ["linuxFxVersion"]))
	startswith(fx, "java|")
	not contains(fx, "-java")
	v := trim_space(substring(fx, 5, -1))
}

stack_version(r, stack) := v if {
	lc(get(config(r), ["linuxFxVersion"])) == ""
	key := {"php": "phpVersion", "python": "pythonVersion", "java": "javaVersion"}[stack]
	v := trim_space(lc(get(config(r), [key])))
	v != ""
}

# version_number(v): "8.2" -> 802, "3.10" -> 310, "1.8" (Java 8) -> 8, "17" -> 1700;
# undefined unless v starts with digits (optionally ".digits").
version_number(v) := n if {
	m := regex.find_n(`^[0-9]+([.][0-9]+)?`, v, 1)
	count(m) == 1
	parts := split(m[0], ".")
	major := to_number(parts[0])
	minor := minor_of(parts)
	n := (major * 100) + minor
}

minor_of(parts) := 0 if count(parts) == 1

minor_of(parts) := to_number(trim_left(parts[1], "0")) if {
	count(parts) == 2
	trim_left(parts[1], "0") != ""
}

minor_of(parts) := 0 if {
	count(parts) == 2
	trim_left(parts[1], "0") == ""
}
