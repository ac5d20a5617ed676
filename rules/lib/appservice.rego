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
# existing site, so it is treated like a failed fetch: undecidable. A fact the scanner
# computes once per site (`r.facts.site`, src/scanner/facts.rs): nearly every rule asks.
has_config(r) if r.facts.site.config_fetched

config_unknown(r) if not has_config(r)

# config(r): the site configuration's properties ({} when not fetched).
config(r) := c if {
	c := r.related["config/web"].properties
	is_object(c)
} else := {}

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
# A fact (`r.facts.site.versions`): the four ways to read it were four bodies the VM ran
# on every call.
stack_version(r, stack) := r.facts.site.versions[stack]

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
