# Helpers for the storage and keyvault rules: null-safe strings and collections, storage
# account kinds and the services they offer, diagnostic settings read from `related`,
# and firewall IP rules that admit (almost) the whole internet.
#
# ARM returns explicit nulls in many places (`"category": null` beside a `categoryGroup`,
# `"networkAcls": null`, `"logs": null`). In regorus `lower(null)` and `some x in null`
# are errors, so everything here goes through lc() and arr().
package scanledger.lib.storage

import data.scanledger.lib
import rego.v1

# ---------------------------------------------------------------------------------------
# Null-safe basics

# lc(x): lower-case x if it is a string, "" otherwise (absent, null, number, ...).
lc(x) := lower(x) if {
	is_string(x)
} else := ""

# arr(x): x if it is an array, [] otherwise.
arr(x) := x if {
	is_array(x)
} else := []

# ---------------------------------------------------------------------------------------
# Storage account kinds, SKUs and services: facts (`r.facts.storage`)
#
# The scanner computes these once per account, in Rust, before the rules run
# (src/scanner/facts.rs, checked against the Rego definitions they replaced by
# tests/facts.rs): every storage rule asks, and deriving them here cost each rule a chain of
# helper calls per account.
#
# kind: StorageV2 (general-purpose v2), Storage (general-purpose v1), BlobStorage (legacy),
# BlockBlobStorage (premium block blobs), FileStorage (premium file shares), lower case.
# A document without `kind` reads as general-purpose v2 (ARM's default kind), so the
# account is checked rather than silently skipped. A StorageV2/Storage account on a
# Premium_* SKU is a premium page-blob account.

kind(r) := r.facts.storage.kind

sku_name(r) := r.facts.storage.sku

premium(r) if r.facts.storage.premium

# Premium page-blob account: no queues, tables, lifecycle policies, versioning, object replication.
premium_page_blob(r) if r.facts.storage.premium_page_blob

hns(r) if r.facts.storage.hns

nfs_v3(r) if r.facts.storage.nfs_v3

# has_blob(r): the account offers the Blob service (every kind but FileStorage).
has_blob(r) if r.facts.storage.blob

# block_blob(r): the account holds block blobs: general-purpose v2 (standard), legacy
# BlobStorage, premium BlockBlobStorage. These support lifecycle management, versioning
# and container soft delete.
block_blob(r) if r.facts.storage.block_blob

# queue_table(r): the account offers the Queue and Table services (standard general-purpose v1/v2).
queue_table(r) if r.facts.storage.queue_table

# offers_files(r): the account has the Azure Files service (general-purpose v1/v2 and
# premium FileStorage; not BlobStorage or BlockBlobStorage).
offers_files(r) if r.facts.storage.files

# ---------------------------------------------------------------------------------------
# Network

# public_network_off(r): publicNetworkAccess Disabled (or SecuredByPerimeter: a network
# security perimeter decides), so the firewall's defaultAction and IP rules do not apply.
# Absent/null means Enabled (the firewall decides).
public_network_off(r) if lc(lib.prop(r, ["publicNetworkAccess"], null)) in {"disabled", "securedbyperimeter"}

# default_action(r): networkAcls.defaultAction, "allow" when networkAcls or the action is
# absent (ARM's documented default: accept connections from any network).
default_action(r) := a if {
	a := lc(lib.prop(r, ["networkAcls", "defaultAction"], null))
	a != ""
} else := "allow"

# An IPv4 range in CIDR notation (a.b.c.d/n).
ipv4_cidr := `^[ ]*[0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}[ ]*/[ ]*[0-9]{1,2}[ ]*$`

# prefix_bits(v): the prefix length of an IPv4 CIDR string.
prefix_bits(v) := to_number(trim_space(split(v, "/")[1])) if {
	is_string(v)
	regex.match(ipv4_cidr, v)
}

# prefix_length(v): prefix_bits(v), or null when v is not an IPv4 CIDR (for details).
prefix_length(v) := b if {
	b := prefix_bits(v)
} else := null

# internet_wide(v): an IP rule value that admits a very large part of the internet:
# `0.0.0.0/0`, `*`, `Internet`, `::/0` and any public IPv4 range of /8 or wider
# (16.7 million addresses or more, e.g. 0.0.0.0/1 + 128.0.0.0/1).
internet_wide(v) if lib.is_internet(v)

internet_wide(v) if {
	is_string(v)
	prefix_bits(v) <= 8
	not private_range(v)
}

# private_range(v): a /8 of private or loopback space (10/8, 127/8). Azure rejects private
# ranges in IP rules, but they never expose anything to the internet, so never flag them.
private_range(v) if trim_space(split(v, ".")[0]) in {"10", "127"}

# ---------------------------------------------------------------------------------------
# Diagnostic settings (from `related`)

# settings(r, path): the diagnostic settings at path: the list (or a list page's `value`,
# or a single setting document); [] when ARM has none (null, empty list). Undefined when
# not fetched.
settings(r, path) := arr(v) if {
	lib.has_related(r, path)
	v := lib.related(r, path)
	not is_object(v)
}

settings(r, path) := arr(v.value) if {
	lib.has_related(r, path)
	v := lib.related(r, path)
	is_object(v)
	"value" in object.keys(v)
}

# A single setting document rather than a list.
settings(r, path) := [v] if {
	lib.has_related(r, path)
	v := lib.related(r, path)
	is_object(v)
	not "value" in object.keys(v)
	"properties" in object.keys(v)
}

settings(r, path) := [] if {
	lib.has_related(r, path)
	v := lib.related(r, path)
	is_object(v)
	not "value" in object.keys(v)
	not "properties" in object.keys(v)
}

setting_logs(setting) := arr(object.get(setting, ["properties", "logs"], []))

# sends_category(setting, category): the setting has a destination and an enabled log
# entry for the category by name, or for the `allLogs` or `audit` category group.
# (For Key Vault the audit group is AuditEvent; for storage services it is the
# StorageRead/StorageWrite/StorageDelete data-access logs.)
sends_category(setting, category) if {
	lib.has_destination(setting)
	some log in setting_logs(setting)
	lib.is_true(object.get(log, "enabled", false))
	lc(object.get(log, "category", null)) == lower(category)
}

sends_category(setting, _) if {
	lib.has_destination(setting)
	some log in setting_logs(setting)
	lib.is_true(object.get(log, "enabled", false))
	lc(object.get(log, "categoryGroup", null)) in {"alllogs", "audit"}
}

# missing_categories(r, path, categories): the categories no diagnostic setting at path
# sends anywhere (settings may split the categories between them).
missing_categories(r, path, categories) := {c |
	some c in categories
	not category_sent(r, path, c)
}

category_sent(r, path, c) if {
	some s in settings(r, path)
	sends_category(s, c)
}

# setting_names(r, path): the names of the settings found, for finding details.
setting_names(r, path) := [n | some s in settings(r, path); n := object.get(s, "name", "")]

# ---------------------------------------------------------------------------------------
# Storage service logging (blob, queue, table) through Azure Monitor diagnostic settings

storage_log_categories := ["StorageRead", "StorageWrite", "StorageDelete"]

# Category groups. `allLogs` holds every category. Any other group (`audit`) holds the
# categories Azure Monitor lists for it, per resource type, in the service's
# diagnosticSettingsCategories document (`properties.categoryGroups` of each category); no
# published table says whether the storage services' `audit` group includes StorageRead,
# so the storage logging rules read that document rather than assume.

# categories_path(path): the diagnosticSettingsCategories list beside a diagnosticSettings path.
categories_path(path) := concat("", [trim_suffix(path, "diagnosticSettings"), "diagnosticSettingsCategories"])

# category_groups(r, cpath, category): the lower-case groups the categories document lists
# for the category; empty when it lists none, or was not fetched.
category_groups(r, cpath, category) := {lc(g) |
	lib.has_related(r, cpath)
	some doc in settings(r, cpath)
	lc(object.get(doc, "name", null)) == lower(category)
	some g in arr(object.get(doc, ["properties", "categoryGroups"], []))
}

# sends_grouped(setting, category, groups): the setting has a destination and an enabled log
# entry for the category by name, for `allLogs`, or for one of the category's groups.
sends_grouped(setting, category, _) if {
	lib.has_destination(setting)
	some log in setting_logs(setting)
	lib.is_true(object.get(log, "enabled", false))
	lc(object.get(log, "category", null)) == lower(category)
}

sends_grouped(setting, _, _) if {
	lib.has_destination(setting)
	some log in setting_logs(setting)
	lib.is_true(object.get(log, "enabled", false))
	lc(object.get(log, "categoryGroup", null)) == "alllogs"
}

sends_grouped(setting, _, groups) if {
	lib.has_destination(setting)
	some log in setting_logs(setting)
	lib.is_true(object.get(log, "enabled", false))
	lc(object.get(log, "categoryGroup", null)) in groups
}

# group_entries(r, path): the enabled category groups other than allLogs that settings at
# path send somewhere (whose members only the categories document can tell).
group_entries(r, path) := {g |
	some setting in settings(r, path)
	lib.has_destination(setting)
	some log in setting_logs(setting)
	lib.is_true(object.get(log, "enabled", false))
	g := lc(object.get(log, "categoryGroup", null))
	not g in {"", "alllogs"}
}

# unsent_categories(r, path, categories): the categories no setting at path sends, counting a
# group only for the categories the categories document places in it (none when the
# document was not fetched: see groups_unknown).
unsent_categories(r, path, categories) := {c |
	some c in categories
	not category_sent_grouped(r, path, c)
}

category_sent_grouped(r, path, c) if {
	some s in settings(r, path)
	sends_grouped(s, c, category_groups(r, categories_path(path), c))
}

# groups_unknown(r, path): a setting relies on a category group (e.g. `audit`) but the
# categories document that says what the group holds was not fetched.
groups_unknown(r, path) if {
	count(group_entries(r, path)) > 0
	lib.related_missing(r, categories_path(path))
}

# ---------------------------------------------------------------------------------------
# Shared keys, files

# shared_key_allowed(r): account keys (and the SAS tokens signed with them) authorize
# requests. allowSharedKeyAccess absent or null means true (Azure's documented default).
shared_key_allowed(r) if not lib.is_false(lib.prop(r, ["allowSharedKeyAccess"], true))

# list_items(r, path): the documents of a related list (an array or a list page's value).
list_items(r, path) := arr(v) if {
	v := lib.related(r, path)
	not is_object(v)
}

list_items(r, path) := arr(object.get(v, "value", [])) if {
	v := lib.related(r, path)
	is_object(v)
}

# smb_shares(r): the file shares served over SMB (enabledProtocols SMB, the default when
# absent), from the related fileServices/default/shares list.
smb_shares(r) := [s |
	some s in list_items(r, "fileServices/default/shares")
	lc(object.get(s, ["properties", "enabledProtocols"], "SMB")) in {"smb", ""}
]
