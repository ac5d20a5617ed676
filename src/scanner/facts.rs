//! Facts computed once per resource, in Rust, before policy: what several rules of a type
//! would otherwise each derive from the raw ARM document through chains of Rego helper
//! calls (the bytecode VM's call machinery is most of a scan's CPU). The rules read them
//! as `r.facts.<family>` beside the raw document; each family here is checked against
//! the Rego helpers it replaced (`tests/facts.rs`, on generated documents).
//!
//! A fact is a pure function of the one document: no other resource, no clock. A
//! document's own `facts` key (ARM sends none) is dropped, so rules only ever read facts
//! computed here.

use serde_json::{json, Map, Value};

/// The key the facts are stored under, in the document the rules see.
pub const KEY: &str = "facts";

/// What the facts read of a document: a `serde_json` tree (the Azure source's documents)
/// or the Rego value a fixture's text was parsed into. Both answer alike for the same
/// JSON (`tests/facts.rs` and the engine's text tests compare the routes).
pub trait Json: Sized {
    /// The member `key` of an object; `None` for anything else.
    fn get(&self, key: &str) -> Option<&Self>;
    fn as_str(&self) -> Option<&str>;
    fn as_bool(&self) -> Option<bool>;
    /// A number as `f64` (as `serde_json` gives it: large integers rounded).
    fn as_f64(&self) -> Option<f64>;
    fn is_object(&self) -> bool;
    /// The members of an object (`Some(0)` for `{}`), `None` for anything else.
    fn object_len(&self) -> Option<usize>;
    /// An object's keys.
    fn keys(&self) -> Box<dyn Iterator<Item = &str> + '_>;
    /// An array's elements, `None` for anything else.
    fn elements(&self) -> Option<Box<dyn Iterator<Item = &Self> + '_>>;
    /// The value as written, for a fact that quotes it.
    fn to_json(&self) -> Value;
}

impl Json for Value {
    fn get(&self, key: &str) -> Option<&Self> {
        self.as_object()?.get(key)
    }
    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }
    fn as_bool(&self) -> Option<bool> {
        Value::as_bool(self)
    }
    fn as_f64(&self) -> Option<f64> {
        Value::as_f64(self)
    }
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }
    fn object_len(&self) -> Option<usize> {
        self.as_object().map(Map::len)
    }
    fn keys(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Value::Object(o) => Box::new(o.keys().map(String::as_str)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn elements(&self) -> Option<Box<dyn Iterator<Item = &Self> + '_>> {
        Some(Box::new(self.as_array()?.iter()))
    }
    fn to_json(&self) -> Value {
        self.clone()
    }
}

impl Json for regorus::Value {
    fn get(&self, key: &str) -> Option<&Self> {
        match self {
            regorus::Value::Object(o) => o.get_str(key),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            regorus::Value::String(s) => Some(s),
            _ => None,
        }
    }
    fn as_bool(&self) -> Option<bool> {
        match self {
            regorus::Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn as_f64(&self) -> Option<f64> {
        match self {
            // Through its JSON form: regorus refuses integers beyond 2^53, which
            // `serde_json` rounds.
            regorus::Value::Number(_) => self.to_json().as_f64(),
            _ => None,
        }
    }
    fn is_object(&self) -> bool {
        matches!(self, regorus::Value::Object(_))
    }
    fn object_len(&self) -> Option<usize> {
        match self {
            regorus::Value::Object(o) => Some(o.len()),
            _ => None,
        }
    }
    fn keys(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            regorus::Value::Object(o) => Box::new(o.keys().filter_map(Json::as_str)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn elements(&self) -> Option<Box<dyn Iterator<Item = &Self> + '_>> {
        match self {
            regorus::Value::Array(a) => Some(Box::new(a.iter())),
            _ => None,
        }
    }
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Add the facts of `kind` (an ARM type, any case) to `resource`.
pub fn attach(kind: &str, resource: &mut Value) {
    let facts = facts_of(kind, resource);
    if let Some(doc) = resource.as_object_mut() {
        match facts {
            Some(facts) => doc.insert(KEY.to_owned(), facts),
            None => doc.remove(KEY),
        };
    }
}

/// The types with facts.
#[derive(Clone, Copy)]
enum Family {
    Storage,
    Site,
    Machine,
    ScaleSet,
    Nsg,
}

fn family(kind: &str) -> Option<Family> {
    let is = |t: &str| kind.eq_ignore_ascii_case(t);
    Some(if is("Microsoft.Storage/storageAccounts") {
        Family::Storage
    } else if is("Microsoft.Web/sites") || is("Microsoft.Web/sites/slots") {
        Family::Site
    } else if is("Microsoft.Compute/virtualMachines") {
        Family::Machine
    } else if is("Microsoft.Compute/virtualMachineScaleSets") {
        Family::ScaleSet
    } else if is("Microsoft.Network/networkSecurityGroups") {
        Family::Nsg
    } else {
        return None;
    })
}

/// The facts of one document, `None` for types without any.
pub fn facts_of<V: Json>(kind: &str, resource: &V) -> Option<Value> {
    let (family, facts) = match family(kind)? {
        Family::Storage => ("storage", storage::account(resource)),
        Family::Site => ("site", site::configuration(resource)),
        Family::Machine => ("compute", compute::machine(resource, false)),
        Family::ScaleSet => ("compute", compute::machine(resource, true)),
        Family::Nsg => ("nsg", nsg::exposure(resource)),
    };
    Some(json!({ family: facts }))
}

/// `lower(x)` for a string, "" for anything else (the catalogue's `lc`).
fn lc<V: Json>(x: Option<&V>) -> String {
    x.and_then(Json::as_str)
        .map(str::to_lowercase)
        .unwrap_or_default()
}

/// `object.get(doc, path, null)`: the value at `path`, `None` when a step is missing or
/// not an object.
fn at<'a, V: Json>(doc: &'a V, path: &[&str]) -> Option<&'a V> {
    path.iter().try_fold(doc, |v, key| v.get(key))
}

/// The catalogue's `lib.is_true`: `true`, or a string reading "true" in any case.
fn is_true<V: Json>(x: Option<&V>) -> bool {
    match x {
        Some(v) => match (v.as_bool(), v.as_str()) {
            (Some(b), _) => b,
            (_, Some(s)) => s.to_lowercase() == "true",
            _ => false,
        },
        None => false,
    }
}

/// The catalogue's `lib.is_false`: `false`, or a string reading "false" in any case.
fn is_false<V: Json>(x: Option<&V>) -> bool {
    match x {
        Some(v) => match (v.as_bool(), v.as_str()) {
            (Some(b), _) => !b,
            (_, Some(s)) => s.to_lowercase() == "false",
            _ => false,
        },
        None => false,
    }
}

/// The object at `path`, `None` when absent or not an object (the catalogue's
/// `obj(get(x, path))`, with `None` for `{}`'s "nothing there").
fn object_at<'a, V: Json>(doc: &'a V, path: &[&str]) -> Option<&'a V> {
    at(doc, path).filter(|v| v.is_object())
}

/// Storage accounts: the kind and SKU, and the services the account offers.
pub mod storage {
    use super::*;

    /// `facts.storage` of a storage account.
    ///
    /// - `kind`: lower-case `kind`; `storagev2` (ARM's default kind) when absent, empty or
    ///   not a string, so an odd document is checked rather than skipped.
    /// - `sku`: lower-case `sku.name`, "" when absent.
    /// - `premium`: a `Premium_*` SKU; `premium_page_blob`: a general-purpose (v1 or v2)
    ///   account on one (no queues, tables, lifecycle policies, versioning).
    /// - `blob`: the Blob service is offered (every kind but FileStorage);
    ///   `block_blob`: the account holds block blobs (general-purpose v2, BlobStorage,
    ///   BlockBlobStorage; not premium page-blob); `queue_table`: Queue and Table services
    ///   (standard general-purpose v1/v2); `files`: Azure Files (general-purpose v1/v2,
    ///   FileStorage).
    /// - `hns`: hierarchical namespace; `nfs_v3`: NFS 3.0 (both `lib.is_true`).
    pub fn account<V: Json>(r: &V) -> Value {
        let kind = match lc(r.get("kind")) {
            k if k.is_empty() => "storagev2".to_owned(),
            k => k,
        };
        let sku = lc(at(r, &["sku", "name"]));
        let premium = sku.starts_with("premium_");
        let general = matches!(kind.as_str(), "storagev2" | "storage");
        let premium_page_blob = general && premium;
        let blob = matches!(
            kind.as_str(),
            "storagev2" | "storage" | "blobstorage" | "blockblobstorage"
        );
        let block_blob = matches!(
            kind.as_str(),
            "storagev2" | "blobstorage" | "blockblobstorage"
        ) && !premium_page_blob;
        json!({
            "kind": kind,
            "sku": sku,
            "premium": premium,
            "premium_page_blob": premium_page_blob,
            "blob": blob,
            "block_blob": block_blob,
            "queue_table": general && !premium,
            "files": matches!(kind.as_str(), "storagev2" | "storage" | "filestorage"),
            "hns": is_true(at(r, &["properties", "isHnsEnabled"])),
            "nfs_v3": is_true(at(r, &["properties", "isNfsV3Enabled"])),
        })
    }
}

/// App Service sites and slots: whether the site configuration was fetched, and the
/// language runtimes it runs.
pub mod site {
    use super::*;

    /// `facts.site` of a site or slot:
    /// - `config_fetched`: the related `config/web` document is an object (a failed fetch
    ///   or a null leaves the configuration unknown);
    /// - `versions`: per stack (`php`, `python`, `java`) the version the site runs, lower
    ///   case, from `linuxFxVersion` (`PHP|8.2`, `PYTHON|3.12`; Java: after `-java` in
    ///   `TOMCAT|10.1-java17`-style images, else after `JAVA|`) or, when that is empty, the
    ///   Windows setting (`phpVersion`, `pythonVersion`, `javaVersion`); absent when the
    ///   site does not run the stack.
    pub fn configuration<V: Json>(r: &V) -> Value {
        let related = at(r, &["related", "config/web"]);
        let fetched = related.is_some_and(Json::is_object);
        let config = related
            .filter(|_| fetched)
            .and_then(|c| c.get("properties"))
            .filter(|p| p.is_object());
        let get = |key: &str| config.and_then(|c| c.get(key));
        let fx = lc(get("linuxFxVersion"));
        let mut versions = Map::new();
        for (stack, windows_key) in [
            ("php", "phpVersion"),
            ("python", "pythonVersion"),
            ("java", "javaVersion"),
        ] {
            let version = if fx.is_empty() {
                Some(lc(get(windows_key)).trim().to_owned()).filter(|v| !v.is_empty())
            } else if stack != "java" {
                fx.strip_prefix(stack)
                    .and_then(|rest| rest.strip_prefix('|'))
                    .map(|v| v.trim().to_owned())
            } else if fx.contains('|') && fx.contains("-java") {
                fx.rsplit("-java").next().map(|v| v.trim().to_owned())
            } else {
                fx.strip_prefix("java|").map(|v| v.trim().to_owned())
            };
            if let Some(v) = version {
                versions.insert(stack.to_owned(), Value::String(v));
            }
        }
        json!({"config_fetched": fetched, "versions": versions})
    }
}

/// Virtual machines and scale sets: the guest OS and how it is patched, the security
/// type, and whether AKS manages the machine.
pub mod compute {
    use super::*;

    /// `facts.compute` of a VM (`vmss` false) or scale set, read from its model (a VM's
    /// `properties`, a scale set's `properties.virtualMachineProfile`):
    /// - `vmss`; `aks_managed`: a tag `aks-managed-*` (any case): AKS creates and governs
    ///   the machine for a node pool;
    /// - `has_os_profile`: a non-empty `osProfile` (machines attached to an existing OS
    ///   disk have none, and their guest settings cannot be read through ARM);
    /// - `os_type`: `windows` or `linux` from `storageProfile.osDisk.osType`, else from
    ///   which `osProfile` configuration is an object, else "";
    /// - `patch_mode`: the OS configuration's `patchSettings.patchMode`, lower case, "" when
    ///   unset; `effective_patch_mode`: with Azure's defaults (Windows `automaticbyos`, or
    ///   `manual` when `enableAutomaticUpdates` is false; Linux `imagedefault`);
    /// - `security_type`: lower-case `securityProfile.securityType`;
    ///   `trusted_or_confidential`: Trusted Launch or a confidential VM.
    pub fn machine<V: Json>(r: &V, vmss: bool) -> Value {
        let model = if vmss {
            at(r, &["properties", "virtualMachineProfile"])
        } else {
            r.get("properties")
        }
        .filter(|m| m.is_object());
        // No model reads as an empty one: every path below is then absent.
        let os_profile = model.and_then(|m| object_at(m, &["osProfile"]));
        let config = |key: &str| {
            os_profile
                .and_then(|p| p.get(key))
                .filter(|c| c.is_object())
        };
        let (windows, linux) = (config("windowsConfiguration"), config("linuxConfiguration"));
        let os_type =
            match lc(model.and_then(|m| at(m, &["storageProfile", "osDisk", "osType"]))).as_str() {
                t @ ("windows" | "linux") => t.to_owned(),
                _ if windows.is_some() => "windows".to_owned(),
                _ if linux.is_some() => "linux".to_owned(),
                _ => String::new(),
            };
        let os_config = match os_type.as_str() {
            "windows" => windows,
            "linux" => linux,
            _ => None,
        };
        let patch_mode = os_config
            .map(|c| lc(at(c, &["patchSettings", "patchMode"])))
            .unwrap_or_default();
        let effective_patch_mode = match os_type.as_str() {
            _ if !patch_mode.is_empty() => patch_mode.clone(),
            "windows" if is_false(windows.and_then(|c| c.get("enableAutomaticUpdates"))) => {
                "manual".to_owned()
            }
            "windows" => "automaticbyos".to_owned(),
            "linux" => "imagedefault".to_owned(),
            _ => String::new(),
        };
        let security_type = lc(model.and_then(|m| at(m, &["securityProfile", "securityType"])));
        let aks_managed = r.get("tags").is_some_and(|tags| {
            tags.keys()
                .any(|k| k.to_lowercase().starts_with("aks-managed-"))
        });
        json!({
            "vmss": vmss,
            "aks_managed": aks_managed,
            "has_os_profile": os_profile.and_then(Json::object_len).is_some_and(|n| n > 0),
            "os_type": os_type,
            "patch_mode": patch_mode,
            "effective_patch_mode": effective_patch_mode,
            "trusted_or_confidential": matches!(security_type.as_str(), "trustedlaunch" | "confidentialvm"),
            "security_type": security_type,
        })
    }
}

/// Network security groups: which inbound rules open which ports to the internet once
/// higher-priority Denies are taken into account.
///
/// Two shadowing semantics are kept, as the rules used them:
/// - per port (`open`, for the named-service rules): a port of an Allow is closed when a
///   higher-priority inbound internet Deny covers that port for the protocol, every source
///   port, and every destination (`*`/`Any`/`0.0.0.0/0`, or all of the Allow's address
///   prefixes);
/// - per range (`wide`, `udp`): a range of an Allow is closed only when one such Deny
///   covers the whole range, and destinations are compared with application security
///   groups as well (a Deny aimed at one ASG does not hide an Allow to every host).
///
/// Ports are parsed as decimal numbers: `"022"` is port 22 (the Rego helpers raised an
/// error on a leading zero).
pub mod nsg {
    use super::*;

    /// Source prefixes meaning "anyone on the internet" (after trimming, lower case).
    const INTERNET: [&str; 7] = ["*", "0.0.0.0", "0.0.0.0/0", "internet", "any", "::/0", "::"];

    /// One security rule, read once.
    struct SecurityRule<'a, V> {
        name: Option<&'a V>,
        inbound: bool,
        access: String,
        /// `protocol` as written, `"*"` when absent.
        protocol: Value,
        /// Lower-case `protocol`; "" when it is not a string.
        protocol_lc: String,
        priority: Option<f64>,
        priority_raw: Value,
        /// Internet source prefixes, as written, in document order.
        internet_sources: Vec<&'a V>,
        port_ranges: Vec<&'a V>,
        all_source_ports: bool,
        /// Lower-case destination address prefixes (strings only).
        dest_prefixes: Vec<String>,
        /// Lower-case destination application security group ids ("" for a bad reference).
        dest_asgs: Vec<String>,
    }

    /// The catalogue's `as_list`: an array, a non-empty string as a list of one, else none.
    fn as_list<V: Json>(v: Option<&V>) -> Vec<&V> {
        let Some(v) = v else {
            return Vec::new();
        };
        match (v.elements(), v.as_str()) {
            (Some(items), _) => items.collect(),
            (_, Some(text)) if !text.is_empty() => vec![v],
            _ => Vec::new(),
        }
    }

    fn both<'a, V: Json>(props: &'a V, one: &str, many: &str) -> Vec<&'a V> {
        let mut v = as_list(props.get(one));
        v.extend(as_list(props.get(many)));
        v
    }

    fn is_internet<V: Json>(p: &V) -> bool {
        p.as_str()
            .is_some_and(|s| INTERNET.contains(&s.trim().to_lowercase().as_str()))
    }

    fn dedup_lc(mut v: Vec<String>) -> Vec<String> {
        v.sort_unstable();
        v.dedup();
        v
    }

    impl<'a, V: Json> SecurityRule<'a, V> {
        /// `None` when the rule has no `properties` object (never inbound).
        fn read(rule: &'a V) -> Option<Self> {
            let props = rule.get("properties").filter(|p| p.is_object())?;
            let text_lc = |key: &str| props.get(key).and_then(Json::as_str).map(str::to_lowercase);
            let protocol = props
                .get("protocol")
                .map_or_else(|| json!("*"), Json::to_json);
            let protocol_lc = protocol.as_str().map(str::to_lowercase).unwrap_or_default();
            let source_ports = both(props, "sourcePortRange", "sourcePortRanges");
            let asgs = match props
                .get("destinationApplicationSecurityGroups")
                .and_then(Json::elements)
            {
                Some(groups) => groups
                    .map(|g| {
                        g.get("id")
                            .and_then(Json::as_str)
                            .filter(|_| g.is_object())
                            .unwrap_or("")
                            .to_lowercase()
                    })
                    .collect(),
                None => Vec::new(),
            };
            Some(Self {
                name: rule.get("name"),
                inbound: text_lc("direction").as_deref() == Some("inbound"),
                access: text_lc("access").unwrap_or_default(),
                protocol,
                protocol_lc,
                priority: props.get("priority").and_then(Json::as_f64),
                priority_raw: props.get("priority").map_or(Value::Null, Json::to_json),
                internet_sources: both(props, "sourceAddressPrefix", "sourceAddressPrefixes")
                    .into_iter()
                    .filter(|p| is_internet(*p))
                    .collect(),
                port_ranges: both(props, "destinationPortRange", "destinationPortRanges"),
                all_source_ports: source_ports.is_empty()
                    || source_ports
                        .iter()
                        .any(|r| r.as_str().is_some_and(|s| s.trim() == "*")),
                dest_prefixes: dedup_lc(
                    both(
                        props,
                        "destinationAddressPrefix",
                        "destinationAddressPrefixes",
                    )
                    .into_iter()
                    .filter_map(|p| p.as_str().map(str::to_lowercase))
                    .collect(),
                ),
                dest_asgs: dedup_lc(asgs),
            })
        }

        /// `lib.protocol_covers`: the rule's protocol is `*` or `proto`.
        fn covers_protocol(&self, proto: &str) -> bool {
            self.protocol_lc == "*" || self.protocol_lc == proto
        }

        /// An inbound internet Deny that could shadow something (protocol aside).
        fn is_shadowing_deny(&self) -> bool {
            self.inbound
                && self.access == "deny"
                && !self.internet_sources.is_empty()
                && self.all_source_ports
                && self.priority.is_some()
        }

        /// Ahead of `allow`: both priorities are numbers and this one is lower.
        fn ahead_of(&self, allow: &Self) -> bool {
            matches!((self.priority, allow.priority), (Some(d), Some(a)) if d < a)
        }

        /// `lib.covers_destinations`: every destination, or all of the Allow's prefixes.
        fn covers_destinations_of(&self, allow: &Self) -> bool {
            self.dest_prefixes
                .iter()
                .any(|p| matches!(p.as_str(), "*" | "any" | "0.0.0.0/0"))
                || (!allow.dest_prefixes.is_empty()
                    && allow
                        .dest_prefixes
                        .iter()
                        .all(|p| self.dest_prefixes.contains(p)))
        }

        /// `lib.network.covers_destinations`: as above, with application security groups.
        fn covers_destinations_with_asgs(&self, allow: &Self) -> bool {
            (self.dest_asgs.is_empty()
                && self
                    .dest_prefixes
                    .iter()
                    .any(|p| matches!(p.as_str(), "*" | "any" | "0.0.0.0/0")))
                || (allow.dest_asgs.is_empty()
                    && !allow.dest_prefixes.is_empty()
                    && allow
                        .dest_prefixes
                        .iter()
                        .all(|p| self.dest_prefixes.contains(p)))
                || (allow.dest_prefixes.is_empty()
                    && !allow.dest_asgs.is_empty()
                    && allow.dest_asgs.iter().all(|g| self.dest_asgs.contains(g)))
        }
    }

    /// A decimal port (spaces around it allowed), as a number.
    fn port_number(s: &str) -> Option<f64> {
        let t = s.trim_matches(' ');
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| {
            t.parse::<u64>()
                .map(|n| n as f64)
                .unwrap_or_else(|_| t.parse().unwrap_or(f64::INFINITY))
        })
    }

    /// `[low, high]` of a port range: `*` (all of 0-65535), `22`, `20-30`; `None` for
    /// anything else.
    fn bounds<V: Json>(range: &V) -> Option<(f64, f64)> {
        let s = range.as_str()?;
        if s.trim() == "*" {
            return Some((0.0, 65535.0));
        }
        if let Some(n) = port_number(s) {
            return Some((n, n));
        }
        let (lo, hi) = s.split_once('-')?;
        Some((port_number(lo)?, port_number(hi)?))
    }

    /// The ports a Deny's range covers: `*` covers every port (not only 0-65535).
    fn coverage<V: Json>(range: &V) -> Option<(f64, f64)> {
        match range.as_str() {
            Some(s) if s.trim() == "*" => Some((f64::NEG_INFINITY, f64::INFINITY)),
            _ => bounds(range),
        }
    }

    /// Ports a range spans (`lib.range_width`): 65536 for `*`, 1 for a port, else
    /// high - low + 1 (which a reversed range makes zero or negative).
    fn width<V: Json>(range: &V) -> Option<f64> {
        let s = range.as_str()?;
        if s.trim() == "*" {
            return Some(65536.0);
        }
        if port_number(s).is_some() {
            return Some(1.0);
        }
        bounds(range).map(|(lo, hi)| hi - lo + 1.0)
    }

    /// `[lo, hi]` minus the union of `holes`, as closed integer intervals.
    fn subtract(lo: f64, hi: f64, holes: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let mut open = vec![(lo, hi)];
        for &(h_lo, h_hi) in holes {
            open = open
                .into_iter()
                .flat_map(|(a, b)| {
                    if h_hi < a || b < h_lo {
                        return vec![(a, b)];
                    }
                    let mut kept = Vec::new();
                    if a < h_lo {
                        kept.push((a, h_lo - 1.0));
                    }
                    if h_hi < b {
                        kept.push((h_hi + 1.0, b));
                    }
                    kept
                })
                .collect();
        }
        open
    }

    /// A number as JSON: an integer when it is one.
    fn number(n: f64) -> Value {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            json!(n as i64)
        } else {
            json!(n)
        }
    }

    /// `facts.nsg` of a network security group: `allows`, one entry per inbound Allow
    /// rule with a name and at least one internet source, in document order:
    /// - `rule`, `priority` (null when absent), `protocol` (`"*"` when absent), as written;
    /// - `source`: its first internet source, `sources`: all of them, sorted, distinct;
    /// - `open`: per port semantics, for TCP and UDP, `{proto, lo, hi, range}`: the ports
    ///   of each of its ranges no Deny closes;
    /// - `wide` (protocol `*`, TCP or UDP): `open`, its ranges no single Deny for its
    ///   protocol closes (as written, distinct), and `ports`, how many ports they span
    ///   (at most 65536);
    /// - `udp` (protocol `*` or UDP): its ranges no single Deny for UDP closes, sorted,
    ///   distinct.
    pub fn exposure<V: Json>(nsg: &V) -> Value {
        let rules: Vec<SecurityRule<V>> =
            match at(nsg, &["properties", "securityRules"]).and_then(Json::elements) {
                Some(rules) => rules.filter_map(SecurityRule::read).collect(),
                None => Vec::new(),
            };
        let denies: Vec<&SecurityRule<V>> =
            rules.iter().filter(|d| d.is_shadowing_deny()).collect();
        let allows = rules
            .iter()
            .filter(|a| a.inbound && a.access == "allow" && !a.internet_sources.is_empty())
            .filter_map(|a| a.name.map(|name| allow_facts(a, name, &denies)))
            .collect();
        json!({ "allows": Value::Array(allows) })
    }

    fn allow_facts<V: Json>(a: &SecurityRule<V>, name: &V, denies: &[&SecurityRule<V>]) -> Value {
        let mut open = Vec::new();
        for proto in ["tcp", "udp"] {
            if !a.covers_protocol(proto) {
                continue;
            }
            let holes: Vec<(f64, f64)> = denies
                .iter()
                .filter(|d| {
                    d.covers_protocol(proto) && d.ahead_of(a) && d.covers_destinations_of(a)
                })
                .flat_map(|d| d.port_ranges.iter().filter_map(|r| coverage(*r)))
                .collect();
            for range in &a.port_ranges {
                let Some((lo, hi)) = bounds(*range) else {
                    continue;
                };
                for (lo, hi) in subtract(lo, hi, &holes) {
                    open.push(json!({
                        "proto": proto,
                        "lo": number(lo),
                        "hi": number(hi),
                        "range": range.to_json(),
                    }));
                }
            }
        }
        let mut sources: Vec<&str> = a
            .internet_sources
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let mut facts = json!({
            "rule": name.to_json(),
            "priority": a.priority_raw,
            "protocol": a.protocol,
            "source": a.internet_sources[0].to_json(),
            "sources": sources,
            "open": open,
        });
        // Per range: closed when one Deny for `proto` covers all of it.
        let closed = |range: &V, proto: &str| {
            bounds(range).is_some_and(|(lo, hi)| {
                denies.iter().any(|d| {
                    d.covers_protocol(proto)
                        && d.ahead_of(a)
                        && d.covers_destinations_with_asgs(a)
                        && d.port_ranges
                            .iter()
                            .filter_map(|r| bounds(*r))
                            .any(|(d_lo, d_hi)| d_lo <= lo && hi <= d_hi)
                })
            })
        };
        if matches!(a.protocol_lc.as_str(), "*" | "tcp" | "udp") {
            // Distinct as JSON values (`serde_json`'s equality on both routes).
            let mut wide: Vec<(&V, Value)> = Vec::new();
            for r in &a.port_ranges {
                let json = r.to_json();
                if !closed(r, &a.protocol_lc) && !wide.iter().any(|(_, w)| *w == json) {
                    wide.push((r, json));
                }
            }
            let ports: f64 = wide.iter().filter_map(|(r, _)| width(*r)).sum();
            let wide: Vec<Value> = wide.into_iter().map(|(_, json)| json).collect();
            facts["wide"] = json!({"open": wide, "ports": number(ports.min(65536.0))});
        }
        if matches!(a.protocol_lc.as_str(), "*" | "udp") {
            let mut udp: Vec<&str> = a
                .port_ranges
                .iter()
                .filter(|r| bounds(**r).is_some() && !closed(r, "udp"))
                .filter_map(|r| r.as_str())
                .collect();
            udp.sort_unstable();
            udp.dedup();
            facts["udp"] = json!(udp);
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_account_without_kind_is_general_purpose_v2() {
        let f = storage::account(&json!({"sku": {"name": "Standard_LRS"}}));
        assert_eq!(f["kind"], "storagev2");
        assert_eq!(
            (
                f["blob"].as_bool(),
                f["block_blob"].as_bool(),
                f["queue_table"].as_bool()
            ),
            (Some(true), Some(true), Some(true))
        );
    }

    #[test]
    fn a_premium_general_purpose_account_holds_page_blobs_only() {
        let f = storage::account(&json!({"kind": "StorageV2", "sku": {"name": "Premium_LRS"}}));
        assert_eq!(f["premium_page_blob"], true);
        assert_eq!(f["block_blob"], false);
        assert_eq!(f["queue_table"], false);
        assert_eq!(f["blob"], true);
    }

    #[test]
    fn file_storage_offers_files_and_no_blobs() {
        let f = storage::account(&json!({"kind": "FileStorage", "sku": {"name": "Premium_ZRS"}}));
        assert_eq!(
            (f["files"].as_bool(), f["blob"].as_bool()),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn flags_read_booleans_and_their_string_forms() {
        let f = storage::account(
            &json!({"properties": {"isHnsEnabled": "TRUE", "isNfsV3Enabled": null}}),
        );
        assert_eq!(
            (f["hns"].as_bool(), f["nfs_v3"].as_bool()),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn a_documents_own_facts_never_reach_the_rules() {
        let mut doc = json!({"kind": "Storage", "facts": "forged"});
        attach("microsoft.storage/storageaccounts", &mut doc);
        assert_eq!(doc["facts"]["storage"]["kind"], "storage");
        let mut vault = json!({"facts": "forged"});
        attach("Microsoft.KeyVault/vaults", &mut vault);
        assert_eq!(vault.get("facts"), None);
    }
}
