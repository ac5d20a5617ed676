//! Rule evaluation. Resources are converted to Rego values once, grouped by type into
//! bounded chunks, and each chunk is evaluated by the rules of that type only, on one
//! cloned engine per core. A rule that errors on a chunk is re-run resource by
//! resource so only the resources it cannot handle count as errored.

use std::collections::HashMap;

use crate::domain::RuleTally;
use regorus::Value;

use super::inventory::View;
use super::rules::{Catalogue, RuleEngine, TypeQuery};
use super::{SUBSCRIPTION_LOCATION_TYPE, SUBSCRIPTION_TYPE};

/// Resources per evaluation task: large enough to amortize handing a chunk to a thread,
/// small enough that a chunk's Rego values stay a few MB.
pub const CHUNK: usize = 256;

/// Resources per query. Each of a type's rule bodies sweeps the query's documents; 64
/// of them stay in a core's cache across the sweeps where 256 did not (one type's query
/// timed alone, µs per resource: storage accounts 88 → 79, sites 68 → 63, VMs 39 → 37;
/// a whole scan at 32 was no faster: docs/performance.md).
pub const PIECE: usize = 64;

/// A resource ready for evaluation: what a finding needs to name it, and its Rego form.
#[derive(Clone, Debug)]
pub struct Doc {
    // Shared with every finding about the resource.
    pub id: std::sync::Arc<str>,
    pub name: std::sync::Arc<str>,
    pub kind: std::sync::Arc<str>,
    pub value: Value,
}

impl Doc {
    /// `None` when the document has no string `id` or `type` (not an ARM resource).
    /// The resource's facts (`super::facts`) are added to its Rego form here, the one
    /// place every path to the rules (scan, `rules test`, `rules bench`) goes through.
    pub fn from_json(resource: serde_json::Value) -> Option<Self> {
        Self::from_json_with(resource, &mut Keys::default())
    }

    /// `from_json` for one of many documents: object keys already seen in `keys` are
    /// shared, not allocated again (a chunk of one type repeats the same few dozen keys,
    /// and field lookups then find them in cache).
    pub fn from_json_with(mut resource: serde_json::Value, keys: &mut Keys) -> Option<Self> {
        let id: std::sync::Arc<str> = resource.get("id")?.as_str()?.into();
        let kind: std::sync::Arc<str> = resource.get("type")?.as_str()?.into();
        super::facts::attach(&kind, &mut resource);
        let name = resource
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_else(|| id.rsplit('/').next().unwrap_or_default())
            .into();
        Some(Self {
            id,
            name,
            kind,
            value: keys.rego(resource),
        })
    }
}

impl Doc {
    /// `from_json_with` for a listed resource: a text is parsed straight into its Rego
    /// value, and its facts are computed on that value.
    pub fn from_listed(listed: super::Listed, keys: &mut Keys) -> Option<Self> {
        let text = match listed {
            super::Listed::Parsed(resource) => return Self::from_json_with(resource, keys),
            super::Listed::Text(text) => text,
        };
        let mut value = keys.parse(text.json()).ok()?;
        // As `facts::attach` does: the rules only read facts the scanner computed.
        let facts = super::facts::facts_of(text.kind(), &value).map(|f| keys.rego(f));
        let key = Value::from(super::facts::KEY);
        if let Ok(map) = value.as_object() {
            if facts.is_some() || map.contains_key(&key) {
                let mut entries: Vec<(Value, Value)> = map
                    .iter_sorted()
                    .filter(|(k, _)| **k != key)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Some(facts) = facts {
                    let at = entries.partition_point(|(k, _)| *k < key);
                    entries.insert(at, (key, facts));
                }
                value = Value::from_sorted_entries(entries);
            }
        }
        let id: std::sync::Arc<str> = text.id().into();
        let name = match &value["name"] {
            Value::String(name) => name.as_ref().into(),
            _ => id.rsplit('/').next().unwrap_or_default().into(),
        };
        Some(Self {
            name,
            kind: text.kind().into(),
            id,
            value,
        })
    }
}

/// Key addresses of an object shape → the positions that sort it (`None`: a key repeats).
type Shapes = HashMap<Box<[usize]>, Option<Box<[u32]>>, foldhash::fast::RandomState>;

/// Object keys shared between the documents of a chunk; converts `serde_json` values to
/// Rego values directly (no intermediate map per object, as the `serde` route builds).
#[derive(Default)]
pub struct Keys {
    keys: std::collections::HashSet<regorus::Rc<str>, foldhash::fast::RandomState>,
    // Scratch stacks of the objects' entries and the arrays' items being parsed, reused
    // for every document: each object or array is then allocated once, at its size,
    // instead of growing a `Vec` of its own and being sorted into another.
    entries: Vec<(Value, Value)>,
    items: Vec<Value>,
    // The key order of each object shape seen (its keys' addresses in document order,
    // the keys being shared) → the positions that sort it, `None` if a key repeats.
    // Resources of one type come in a few shapes: sorting their keys again, comparing
    // strings, was most of building an object.
    shapes: Shapes,
    shape: Vec<usize>,
}

impl Keys {
    fn key(&mut self, k: &str) -> Value {
        if let Some(shared) = self.keys.get(k) {
            return Value::String(shared.clone());
        }
        let k: regorus::Rc<str> = k.into();
        self.keys.insert(k.clone());
        Value::String(k)
    }

    /// The object of the entries pushed on the scratch stack since `start`: sorted by
    /// key, a repeated key keeping its last value (as in a tree's map, and as
    /// `Value::from_sorted_entries` keeps it), allocated at its size.
    fn object_from(&mut self, start: usize) -> Value {
        if self.entries.len() - start > 1 {
            if let Some(object) = self.object_of_known_shape(start) {
                return object;
            }
        }
        let entries = &mut self.entries[start..];
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable, so a repeated key's values stay in document order ...
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            // ... and the last of them is kept (the others end past `kept`).
            let mut kept = start;
            for i in start..self.entries.len() {
                if kept > start && self.entries[kept - 1].0 == self.entries[i].0 {
                    self.entries.swap(kept - 1, i);
                } else {
                    self.entries.swap(kept, i);
                    kept += 1;
                }
            }
            self.entries.truncate(kept);
        }
        let sorted: Vec<(Value, Value)> = self.entries.drain(start..).collect();
        Value::from_sorted_entries(sorted)
    }

    /// `object_from` through the order of the entries' shape (learnt the first time it
    /// is seen); `None` when keys repeat (the general path keeps the last of them).
    fn object_of_known_shape(&mut self, start: usize) -> Option<Value> {
        self.shape.clear();
        for (k, _) in &self.entries[start..] {
            match k {
                // Parsed keys are the shared ones (`key`): one address per distinct key.
                Value::String(k) => self.shape.push(address(k)),
                _ => return None,
            }
        }
        if let Some(known) = self.shapes.get(self.shape.as_slice()) {
            return Some(in_order(&mut self.entries, start, known.as_deref()?));
        }
        let entries = &self.entries[start..];
        let mut order: Vec<u32> = (0..entries.len() as u32).collect();
        order.sort_by(|&a, &b| entries[a as usize].0.cmp(&entries[b as usize].0));
        let unique = order
            .windows(2)
            .all(|w| entries[w[0] as usize].0 != entries[w[1] as usize].0);
        let order = unique.then(|| order.into_boxed_slice());
        let object = order
            .as_deref()
            .map(|order| in_order(&mut self.entries, start, order));
        self.shapes.insert(self.shape.as_slice().into(), order);
        object
    }

    /// The Rego value of a JSON text: what `rego` gives for the text's tree, without
    /// the tree (a key is looked up as the parser reads it, not allocated).
    pub fn parse(&mut self, json: &str) -> serde_json::Result<Value> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(json);
        let value = RegoSeed(self).deserialize(&mut de);
        // A text that failed part-way leaves what it had read on the scratch stacks.
        self.entries.clear();
        self.items.clear();
        let value = value?;
        de.end()?;
        Ok(value)
    }

    /// The Rego value of a JSON document: what `Value::from(serde_json::Value)` gives.
    pub fn rego(&mut self, v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Value::from(u),
                (None, Some(i), _) => Value::from(i),
                (None, None, Some(f)) => Value::from(f),
                (None, None, None) => Value::Undefined,
            },
            serde_json::Value::String(s) => Value::String(s.into()),
            serde_json::Value::Array(items) => {
                Value::from(items.into_iter().map(|i| self.rego(i)).collect::<Vec<_>>())
            }
            serde_json::Value::Object(map) => Value::from_sorted_entries(
                map.into_iter()
                    .map(|(k, v)| (self.key(&k), self.rego(v)))
                    .collect(),
            ),
        }
    }
}

/// The object of `entries[start..]` taken in `order` (sorted, unique keys); the
/// entries are removed.
fn in_order(entries: &mut Vec<(Value, Value)>, start: usize, order: &[u32]) -> Value {
    let mut sorted = Vec::with_capacity(order.len());
    for &i in order {
        let at = start + i as usize;
        sorted.push(std::mem::replace(
            &mut entries[at],
            (Value::Null, Value::Null),
        ));
    }
    entries.truncate(start);
    Value::from_sorted_entries(sorted)
}

/// Parses one JSON value into a Rego value, sharing object keys through `Keys`.
struct RegoSeed<'k>(&'k mut Keys);

impl<'de> serde::de::DeserializeSeed<'de> for RegoSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RegoSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    // The three number kinds serde_json reads, converted as `rego` converts its
    // `Number` (non-negative integer, negative integer, anything else as a float).
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::from(u))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::from(i))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::from(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.into()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let start = self.0.items.len();
        while let Some(item) = seq.next_element_seed(RegoSeed(&mut *self.0))? {
            self.0.items.push(item);
        }
        let items: Vec<Value> = self.0.items.drain(start..).collect();
        Ok(Value::from(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let start = self.0.entries.len();
        while let Some(key) = map.next_key_seed(KeySeed(&mut *self.0))? {
            let value = map.next_value_seed(RegoSeed(&mut *self.0))?;
            self.0.entries.push((key, value));
        }
        Ok(self.0.object_from(start))
    }
}

/// An object key, shared through `Keys`.
struct KeySeed<'k>(&'k mut Keys);

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, k: &str) -> Result<Value, E> {
        Ok(self.0.key(k))
    }
}

/// One `deny` entry: rule `rule` fired on `docs[doc]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub rule: usize,
    pub doc: usize,
    pub sub_item: String,
    pub details: crate::domain::Details,
}

/// One `indeterminate` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecided {
    pub rule: usize,
    pub doc: usize,
    pub reason: String,
}

/// An evaluation error, for the logs.
#[derive(Clone, Debug)]
pub struct RuleError {
    pub rule: usize,
    pub doc: Option<usize>,
    pub message: String,
}

/// What evaluating one chunk produced.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    pub hits: Vec<Hit>,
    pub undecided: Vec<Undecided>,
    pub tallies: Vec<(usize, RuleTally)>,
    pub errors: Vec<RuleError>,
    /// Rule evaluations done (rules × resources), for progress.
    pub evaluations: u64,
}

impl ChunkOutcome {
    /// Add the outcome of the resources that followed this chunk's, `offset` of them.
    fn append(&mut self, other: ChunkOutcome, offset: usize) {
        self.hits.extend(other.hits.into_iter().map(|h| Hit {
            doc: h.doc + offset,
            ..h
        }));
        self.undecided
            .extend(other.undecided.into_iter().map(|u| Undecided {
                doc: u.doc + offset,
                ..u
            }));
        self.errors
            .extend(other.errors.into_iter().map(|e| RuleError {
                doc: e.doc.map(|d| d + offset),
                ..e
            }));
        add_tallies(&mut self.tallies, other.tallies);
        self.evaluations += other.evaluations;
    }
}

/// Add each rule's tally in `other` to its tally in `mine` (a type has a few dozen rules).
pub(crate) fn add_tallies(mine: &mut Vec<(usize, RuleTally)>, other: Vec<(usize, RuleTally)>) {
    for (rule, t) in other {
        match mine.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, m)) => m.add(&t),
            None => mine.push((rule, t)),
        }
    }
}

/// One `deny` entry of a subscription rule: about the subscription or a region of it.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionHit {
    pub rule: usize,
    /// `/subscriptions/<id>`, `/subscriptions/<id>/locations/<region>`, or the id of a
    /// resource in the view, as the rule spelled it.
    pub resource_id: String,
    pub resource_name: String,
    pub resource_type: String,
    pub sub_item: String,
    pub details: crate::domain::Details,
}

/// What evaluating the subscription rules produced.
#[derive(Debug, Default)]
pub struct SubscriptionOutcome {
    pub hits: Vec<SubscriptionHit>,
    /// (rule, reason): the rule could not decide (a type it reads was not listed, or
    /// its `indeterminate` said so).
    pub undecided: Vec<(usize, String)>,
    pub tallies: Vec<(usize, RuleTally)>,
    pub errors: Vec<RuleError>,
}

/// Instructions one (rule, chunk) evaluation may run: far above what any rule needs on
/// a chunk, low enough that a runaway rule errors instead of stalling the scan.
const MAX_INSTRUCTIONS: usize = 200_000_000;

/// What runs the rules: the bytecode VM, or the interpreter when the catalogue could not
/// be compiled.
enum Backend {
    Vm(Box<regorus::rvm::vm::RegoVM>),
    Interpreter(Box<regorus::Engine>),
}

impl Backend {
    fn set_input(&mut self, input: Value) {
        match self {
            Self::Vm(vm) => vm.set_input(input),
            Self::Interpreter(engine) => engine.set_input(input),
        }
    }

    fn eval(&mut self, path: &str) -> Result<Value, String> {
        match self {
            Self::Vm(vm) => {
                let result = vm.execute_entry_point_by_name(path);
                // The memo's entries hold the chunk's documents: let them go with it.
                vm.clear_function_call_memo();
                result.map_err(|e| e.to_string())
            }
            Self::Interpreter(engine) => engine
                .eval_rule(path.to_owned())
                .map_err(|e| format!("{e:#}")),
        }
    }
}

/// One evaluation engine; it and its values stay on the thread that made it (regorus'
/// reference counts are not atomic).
pub struct Evaluator {
    backend: Backend,
    /// Lower-cased type → one query for all of the type's rules (none for the reference).
    queries: std::sync::Arc<HashMap<String, TypeQuery>>,
    catalogue: std::sync::Arc<Catalogue>,
}

#[derive(Default)]
struct RuleOutput {
    hits: Vec<(usize, String, crate::domain::Details)>,
    undecided: Vec<(usize, String)>,
}

/// What a rule's sets say about a chunk's resources.
struct Chunk<'a> {
    index: &'a Index,
    names: EntryNames,
}

/// The field names of a rule's entries, as Rego keys built once per chunk, not per entry.
struct EntryNames {
    id: Value,
    sub_item: Value,
    details: Value,
    reason: Value,
}

impl Default for EntryNames {
    fn default() -> Self {
        Self {
            id: Value::from("id"),
            sub_item: Value::from("sub_item"),
            details: Value::from("details"),
            reason: Value::from("reason"),
        }
    }
}

impl<'a> Chunk<'a> {
    fn new(index: &'a Index) -> Self {
        Self {
            index,
            names: EntryNames::default(),
        }
    }

    fn locate(&self, entry: &Value) -> Result<usize, String> {
        if let Some(Value::String(id)) = field_of(entry, &self.names.id) {
            if let Some(&i) = self.index.by_address.get(&address(id)) {
                return Ok(i);
            }
        }
        let id = string_of(entry, &self.names.id)?;
        self.index
            .by_id
            .get(&id.to_ascii_lowercase())
            .copied()
            .ok_or_else(|| format!("entry names {id:?}, which is not in the input"))
    }

    fn read_deny(&self, deny: Value, out: &mut RuleOutput) -> Result<(), String> {
        for entry in entries(deny)? {
            let doc = self.locate(&entry)?;
            let sub_item = string_of(&entry, &self.names.sub_item)?;
            let details = match field_of(&entry, &self.names.details) {
                None | Some(Value::Undefined) => crate::domain::Details::of(&serde_json::json!({})),
                Some(d) => crate::domain::Details::of(d),
            }
            .map_err(|e| e.to_string())?;
            out.hits.push((doc, sub_item, details));
        }
        Ok(())
    }

    fn read_indeterminate(&self, v: Value, out: &mut RuleOutput) -> Result<(), String> {
        for entry in entries(v)? {
            let doc = self.locate(&entry)?;
            out.undecided
                .push((doc, string_of(&entry, &self.names.reason)?));
        }
        Ok(())
    }
}

/// A chunk's resources by id. An entry built from `r.id` holds the very string the
/// chunk's input gave the rule, so the string's address finds the resource without
/// lower-casing and hashing the id per finding; an id a rule built itself is looked up
/// lower-cased, as ARM ids compare.
struct Index {
    by_address: HashMap<usize, usize, foldhash::fast::RandomState>,
    by_id: HashMap<String, usize>,
}

/// Where a string's bytes live: two live strings never share it.
fn address(s: &regorus::Rc<str>) -> usize {
    regorus::Rc::as_ptr(s).cast::<u8>() as usize
}

fn input_of(docs: &[&Doc]) -> Value {
    let mut obj = std::collections::BTreeMap::new();
    obj.insert(
        Value::from("resources"),
        Value::from(docs.iter().map(|d| d.value.clone()).collect::<Vec<_>>()),
    );
    Value::from(obj)
}

fn index_of(docs: &[&Doc]) -> Index {
    let mut by_address = HashMap::with_capacity_and_hasher(docs.len(), Default::default());
    let mut by_id = HashMap::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        if let Value::String(id) = &d.value["id"] {
            by_address.insert(address(id), i);
        }
        by_id.insert(d.id.to_ascii_lowercase(), i);
    }
    Index { by_address, by_id }
}

fn entries(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Undefined => Ok(Vec::new()),
        Value::Set(s) => Ok(s.iter().cloned().collect()),
        Value::Array(a) => Ok(a.iter().cloned().collect()),
        other => Err(format!("expected a set, got {other}")),
    }
}

fn field<'a>(entry: &'a Value, name: &str) -> Option<&'a Value> {
    field_of(entry, &Value::from(name))
}

/// A member of a rule's entry. `lib.finding` builds `[id, sub_item, details]` and
/// `lib.undecided` `[id, reason]`: the VM builds and compares arrays (a `deny` set sorts
/// its entries as it grows) faster than objects, whose first member, `details`, is
/// compared before the id. An entry written as an object names its members.
fn field_of<'a>(entry: &'a Value, name: &Value) -> Option<&'a Value> {
    match entry {
        Value::Object(o) => o.get(name),
        Value::Array(a) => {
            let at = match name {
                Value::String(n) => match &**n {
                    "id" => 0,
                    "sub_item" | "reason" => 1,
                    "details" => 2,
                    _ => return None,
                },
                _ => return None,
            };
            a.get(at)
        }
        _ => None,
    }
}

fn string_field(entry: &Value, name: &str) -> Result<String, String> {
    string_of(entry, &Value::from(name))
}

fn string_of(entry: &Value, name: &Value) -> Result<String, String> {
    match field_of(entry, name) {
        Some(Value::String(s)) => Ok(s.to_string()),
        None | Some(Value::Undefined) | Some(Value::Null) => Ok(String::new()),
        Some(other) => {
            let name = match name {
                Value::String(name) => name.as_ref(),
                _ => "",
            };
            Err(format!("`{name}` is not a string: {other}"))
        }
    }
}

impl Evaluator {
    /// An evaluator of the catalogue's setting, with the type queries (what scans use).
    /// Its engine and every value it makes stay on the calling thread.
    pub fn new(catalogue: std::sync::Arc<Catalogue>) -> Self {
        match catalogue.evaluation {
            RuleEngine::Bytecode => Self::bytecode(catalogue.clone()).unwrap_or_else(|| {
                // The catalogue does not compile: the interpreter, with the type queries.
                let (engine, queries) = catalogue.parse_with_type_queries();
                Self {
                    backend: Backend::Interpreter(Box::new(engine)),
                    queries: std::sync::Arc::new(queries),
                    catalogue,
                }
            }),
            RuleEngine::Interpreter => Self::interpreter(catalogue),
        }
    }

    /// An evaluator that runs the bytecode whatever the catalogue's setting (for
    /// `rules test`, which checks it against the interpreter); `None` if the catalogue
    /// could not be compiled.
    pub fn bytecode(catalogue: std::sync::Arc<Catalogue>) -> Option<Self> {
        let compiled = catalogue.compiled();
        let program = match regorus::rvm::program::Program::deserialize_binary(
            compiled.program.as_deref()?,
        ) {
            Ok(regorus::rvm::program::DeserializationResult::Complete(program)) => program,
            Ok(regorus::rvm::program::DeserializationResult::Partial(_)) => {
                tracing::warn!("the serialized rules need recompiling; evaluating them with the (slower) interpreter");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the serialized rules do not load; evaluating them with the (slower) interpreter");
                return None;
            }
        };
        let mut vm = regorus::rvm::vm::RegoVM::new();
        // regorus' VM takes its program as an `Arc`; the program stays on this thread.
        #[allow(clippy::arc_with_non_send_sync)]
        vm.load_program(std::sync::Arc::new(program));
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        // As in the interpreter: a builtin error is an error, never undefined,
        // and an error inside a rule or function body reaches us instead of
        // making the body fail quietly (which would read as a pass).
        vm.set_strict_builtin_errors(true);
        vm.set_strict_rule_errors(true);
        // The rules of a type call the same helpers on the same resource
        // (`lib.no_properties(r)` 16 times per storage account): a repeated call
        // is answered from the evaluation's memo. Exact: functions are pure within an evaluation
        // (vendor/regorus, `set_function_call_memo`).
        vm.set_function_call_memo(true);
        let queries = compiled.queries.clone();
        Some(Self {
            backend: Backend::Vm(Box::new(vm)),
            queries,
            catalogue,
        })
    }

    /// An evaluator that interprets the rules, one query per rule: the reference.
    pub fn interpreter(catalogue: std::sync::Arc<Catalogue>) -> Self {
        Self {
            backend: Backend::Interpreter(Box::new(catalogue.parse())),
            queries: Default::default(),
            catalogue,
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Evaluate one rule on the current input; `index` maps each input resource's
    /// lower-cased id to its position.
    fn run_rule(&mut self, rule: usize, index: &Index) -> Result<RuleOutput, String> {
        let catalogue = self.catalogue.clone();
        let r = &catalogue.rules()[rule];
        let chunk = Chunk::new(index);
        let mut out = RuleOutput::default();
        chunk.read_deny(self.backend.eval(&r.deny_path)?, &mut out)?;
        if let Some(path) = &r.indeterminate_path {
            chunk.read_indeterminate(self.backend.eval(path)?, &mut out)?;
        }
        Ok(out)
    }

    /// Evaluate all rules of a type in one query on the current input: rule → output.
    /// An error anywhere fails the whole query; the caller then runs rule by rule.
    fn run_type_query(
        &mut self,
        query: &TypeQuery,
        index: &Index,
    ) -> Result<HashMap<usize, RuleOutput>, String> {
        let Value::Array(items) = self.backend.eval(&query.path)? else {
            return Err("a type query did not return an array".into());
        };
        if items.len() != query.parts.len() {
            return Err("a type query returned a part per rule too few or too many".into());
        }
        let chunk = Chunk::new(index);
        let mut outputs: HashMap<usize, RuleOutput> = HashMap::new();
        for (&(rule, indeterminate), item) in query.parts.iter().zip(items.iter()) {
            let out = outputs.entry(rule).or_default();
            if indeterminate {
                chunk.read_indeterminate(item.clone(), out)?;
            } else {
                chunk.read_deny(item.clone(), out)?;
            }
        }
        Ok(outputs)
    }

    /// Evaluate subscription-scope `rules` on the subscription view, once each. A rule
    /// that reads a type the source did not list is indeterminate without being run:
    /// an existence check must never pass on a list that was not read.
    pub fn evaluate_subscription(&mut self, rules: &[usize], view: &View) -> SubscriptionOutcome {
        let mut outcome = SubscriptionOutcome::default();
        let catalogue = self.catalogue.clone();
        let mut input_set = false;
        for &rule in rules {
            let r = &catalogue.rules()[rule];
            let mut tally = RuleTally {
                evaluated: 1,
                ..Default::default()
            };
            let unlisted: Vec<&str> = r
                .types
                .iter()
                .filter(|t| !view.listed.contains(*t))
                .map(String::as_str)
                .collect();
            if !unlisted.is_empty() {
                tally.indeterminate = 1;
                outcome.undecided.push((
                    rule,
                    format!("the source could not list {}", unlisted.join(", ")),
                ));
                outcome.tallies.push((rule, tally));
                continue;
            }
            if !input_set {
                self.backend
                    .set_input(Keys::default().rego(view.input.clone()));
                input_set = true;
            }
            match self.run_subscription_rule(rule, view) {
                Ok((hits, undecided)) => {
                    if !hits.is_empty() {
                        tally.failed = 1;
                    } else if let Some(reason) = undecided.into_iter().next() {
                        tally.indeterminate = 1;
                        outcome.undecided.push((rule, reason));
                    }
                    outcome.hits.extend(hits);
                }
                Err(message) => {
                    tally.errored = 1;
                    outcome.errors.push(RuleError {
                        rule,
                        doc: None,
                        message,
                    });
                }
            }
            outcome.tallies.push((rule, tally));
        }
        outcome
    }

    /// One subscription rule on the current input: its findings and indeterminate
    /// reasons. Entries must name the subscription or one of its regions.
    #[allow(clippy::type_complexity)]
    fn run_subscription_rule(
        &mut self,
        rule: usize,
        view: &View,
    ) -> Result<(Vec<SubscriptionHit>, Vec<String>), String> {
        let catalogue = self.catalogue.clone();
        let r = &catalogue.rules()[rule];
        let subscription = &view.subscription;
        // (id, name, type) of what an entry is about.
        let about = |entry: &Value| -> Result<(String, String, String), String> {
            let id = string_field(entry, "id")?;
            let lower = id.to_ascii_lowercase();
            if lower == subscription.to_ascii_lowercase() {
                let name = id.rsplit('/').next().unwrap_or_default().to_owned();
                return Ok((id, name, SUBSCRIPTION_TYPE.into()));
            }
            let region = lower
                .strip_prefix(&subscription.to_ascii_lowercase())
                .and_then(|rest| rest.strip_prefix("/locations/"))
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .map(str::to_owned);
            if let Some(region) = region {
                return Ok((id, region, SUBSCRIPTION_LOCATION_TYPE.into()));
            }
            if let Some((name, kind)) = view.resources.get(&lower) {
                return Ok((id, name.clone(), kind.clone()));
            }
            Err(format!(
                "entry names {id:?}: a subscription rule's entries name {subscription}, one of its regions ({subscription}/locations/<region>) or a resource of its inventory"
            ))
        };
        let mut hits = Vec::new();
        for entry in entries(self.backend.eval(&r.deny_path)?)? {
            let (resource_id, resource_name, resource_type) = about(&entry)?;
            let details = match field(&entry, "details") {
                None | Some(Value::Undefined) => crate::domain::Details::of(&serde_json::json!({})),
                Some(d) => crate::domain::Details::of(d),
            }
            .map_err(|e| e.to_string())?;
            hits.push(SubscriptionHit {
                rule,
                resource_id,
                resource_name,
                resource_type,
                sub_item: string_field(&entry, "sub_item")?,
                details,
            });
        }
        let mut undecided = Vec::new();
        if let Some(path) = &r.indeterminate_path {
            for entry in entries(self.backend.eval(path)?)? {
                about(&entry)?;
                undecided.push(string_field(&entry, "reason")?);
            }
        }
        Ok((hits, undecided))
    }

    /// Evaluate `rules` (indexes into the catalogue) over `docs`, all of one type.
    pub fn evaluate(&mut self, rules: &[usize], docs: &[Doc]) -> ChunkOutcome {
        // Entries name resources by id, and rules may key per-chunk tables by id (e.g.
        // `lib.compute.models`; the VM's object comprehensions keep the last of
        // duplicate keys where the interpreter errors): a chunk's ids must be unique.
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = docs
            .iter()
            .position(|d| !seen.insert(d.id.to_ascii_lowercase()))
        {
            let mut first = self.evaluate_unique(rules, &docs[..dup]);
            let rest = self.evaluate(rules, &docs[dup..]);
            first.append(rest, dup);
            return first;
        }
        self.evaluate_unique(rules, docs)
    }

    /// `evaluate` on a chunk whose ids are unique (ignoring case), a piece at a time.
    fn evaluate_unique(&mut self, rules: &[usize], docs: &[Doc]) -> ChunkOutcome {
        let mut pieces = docs.chunks(PIECE);
        let Some(first) = pieces.next() else {
            return ChunkOutcome::default();
        };
        let mut outcome = self.evaluate_piece(rules, first);
        let mut offset = first.len();
        for piece in pieces {
            outcome.append(self.evaluate_piece(rules, piece), offset);
            offset += piece.len();
        }
        outcome
    }

    /// `evaluate_unique` on at most `PIECE` documents.
    fn evaluate_piece(&mut self, rules: &[usize], docs: &[Doc]) -> ChunkOutcome {
        let all: Vec<&Doc> = docs.iter().collect();
        let mut outcome = ChunkOutcome::default();
        if docs.is_empty() {
            return outcome;
        }
        self.backend.set_input(input_of(&all));
        let mut input_is_chunk = true;
        // Built once per piece, shared by its rules.
        let index = index_of(&all);
        // All of the type's rules in one query when they are exactly the rules asked for;
        // if it fails (a rule errored), every rule runs on its own below, which isolates
        // the error to its rule and resources.
        let queries = self.queries.clone();
        let mut together = queries
            .get(&docs[0].kind.to_ascii_lowercase())
            .filter(|q| q.rules == rules)
            .and_then(|q| self.run_type_query(q, &index).ok())
            .unwrap_or_default();
        for &rule in rules {
            if !input_is_chunk {
                self.backend.set_input(input_of(&all));
                input_is_chunk = true;
            }
            outcome.evaluations += docs.len() as u64;
            let mut tally = RuleTally {
                evaluated: docs.len() as u64,
                ..Default::default()
            };
            let mut results: Vec<(usize, RuleOutput)> = Vec::new();
            let first = match together.remove(&rule) {
                Some(out) => Ok(out),
                None => self.run_rule(rule, &index),
            };
            match first {
                Ok(out) => results.push((0, out)),
                Err(message) if docs.len() == 1 => {
                    tally.errored += 1;
                    outcome.errors.push(RuleError {
                        rule,
                        doc: Some(0),
                        message,
                    });
                }
                Err(_) => {
                    // Isolate: which resources does the rule fail on?
                    input_is_chunk = false;
                    for (i, doc) in all.iter().enumerate() {
                        self.backend.set_input(input_of(&[doc]));
                        match self.run_rule(rule, &index_of(&[doc])) {
                            Ok(out) => results.push((i, out)),
                            Err(message) => {
                                tally.errored += 1;
                                outcome.errors.push(RuleError {
                                    rule,
                                    doc: Some(i),
                                    message,
                                });
                            }
                        }
                    }
                }
            }
            let mut failed = vec![false; docs.len()];
            let mut undecided = vec![false; docs.len()];
            for (offset, out) in results {
                for (doc, sub_item, details) in out.hits {
                    let doc = doc + offset;
                    failed[doc] = true;
                    outcome.hits.push(Hit {
                        rule,
                        doc,
                        sub_item,
                        details,
                    });
                }
                for (doc, reason) in out.undecided {
                    let doc = doc + offset;
                    if !undecided[doc] {
                        undecided[doc] = true;
                        outcome.undecided.push(Undecided { rule, doc, reason });
                    }
                }
            }
            tally.failed = failed.iter().filter(|f| **f).count() as u64;
            tally.indeterminate = undecided
                .iter()
                .zip(&failed)
                .filter(|(u, f)| **u && !**f)
                .count() as u64;
            outcome.tallies.push((rule, tally));
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short strings over a small alphabet, so prefixes, equal strings, 8-byte
    /// boundaries and multi-byte characters all occur.
    fn word(rng: &mut fastrand::Rng) -> String {
        const PARTS: [&str; 8] = ["a", "b", "/", "é", "\u{0}", "aaaaaaaa", "z", "properties"];
        (0..rng.usize(0..6))
            .map(|_| PARTS[rng.usize(0..PARTS.len())])
            .collect()
    }

    // The vendored regorus compares strings with its own byte loop and looks object keys
    // up with it (vendor/regorus/PATCH.diff); sets, objects and findings depend on that
    // order being exactly the byte order the derived `Ord` gave.
    #[test]
    fn rego_strings_order_and_object_lookups_follow_byte_order() {
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..20_000 {
            let (s, t) = (word(&mut rng), word(&mut rng));
            assert_eq!(
                Value::from(s.as_str()).cmp(&Value::from(t.as_str())),
                s.as_bytes().cmp(t.as_bytes()),
                "{s:?} vs {t:?}"
            );
        }
        for _ in 0..500 {
            let keys: Vec<String> = (0..rng.usize(0..20)).map(|_| word(&mut rng)).collect();
            let json: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), serde_json::json!(i)))
                .collect();
            let object = Value::from(serde_json::Value::Object(json.clone()));
            // The same members stored sorted, among keys of other kinds (numbers, null,
            // arrays sort before and after strings), as parsed documents are stored.
            let mut entries: Vec<(Value, Value)> = json
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.clone())))
                .collect();
            entries.extend([
                (Value::Null, Value::Null),
                (Value::from(7u64), Value::Null),
                (Value::from(vec![Value::Null]), Value::Null),
                (Value::new_object(), Value::Null),
            ]);
            let frozen = Value::from_sorted_entries(entries);
            // Hints as a lookup site keeps them: left by earlier lookups (found or not,
            // in this object or a differently shaped one), or garbage.
            let mut hints = [0u32, 3, u32::MAX, 1 << 31, (1 << 31) | 40, 7];
            for _ in 0..20 {
                let probe = word(&mut rng);
                let expected = json.get(&probe).map(|v| Value::from(v.clone()));
                let found = &object[&Value::from(probe.as_str())];
                assert_eq!(
                    expected.clone().unwrap_or(Value::Undefined),
                    found.clone(),
                    "{probe:?} in {keys:?}"
                );
                for o in [&object, &frozen] {
                    assert_eq!(
                        o.as_object().unwrap().get_str(&probe),
                        expected.as_ref(),
                        "get_str({probe:?}) in {keys:?}"
                    );
                    for hint in &mut hints {
                        let key = Value::from(probe.as_str());
                        let before = *hint;
                        assert_eq!(
                            o.as_object().unwrap().get_hinted(&key, hint),
                            expected.as_ref(),
                            "get_hinted({probe:?}, {before:#x}) in {keys:?}"
                        );
                    }
                }
                // A key of another kind, found through the same hints.
                for hint in &mut hints {
                    let key = Value::from(7u64);
                    let expected = Some(&Value::Null);
                    assert_eq!(frozen.as_object().unwrap().get_hinted(&key, hint), expected);
                }
            }
        }
        // Across kinds, the derived order: null < bool < number < string < array < set <
        // object < undefined.
        let ranked = [
            Value::Null,
            Value::from(true),
            Value::from(1u64),
            Value::from("a"),
            Value::from(vec![Value::Null]),
            Value::new_set(),
            Value::new_object(),
            Value::Undefined,
        ];
        for (i, a) in ranked.iter().enumerate() {
            for (j, b) in ranked.iter().enumerate() {
                assert_eq!(a.cmp(b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    fn vm_for(policy: &str, entry: &str) -> regorus::rvm::vm::RegoVM {
        vm_compiled(policy, entry, false)
    }

    fn vm_compiled(policy: &str, entry: &str, inlining: bool) -> regorus::rvm::vm::RegoVM {
        use regorus::languages::rego::compiler::Compiler;
        let mut engine = regorus::Engine::new();
        engine.add_policy("t.rego".into(), policy.into()).unwrap();
        let compiled = engine.compile_with_entrypoint(&entry.into()).unwrap();
        let program = if inlining {
            Compiler::compile_from_policy_inlining(&compiled, &[entry])
        } else {
            Compiler::compile_from_policy(&compiled, &[entry])
        }
        .unwrap();
        let mut vm = regorus::rvm::vm::RegoVM::new();
        vm.load_program(program);
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_strict_builtin_errors(true);
        vm.set_strict_rule_errors(true);
        vm.set_function_call_memo(true);
        vm
    }

    /// The catalogue's one-line helpers run inlined in scans, not as calls: a rewrite of a
    /// helper into a form the compiler does not inline would only show as a slower scan.
    /// The VM's memo statistics name every function it called.
    #[test]
    fn the_catalogues_one_line_helpers_run_inlined() {
        let catalogue = std::sync::Arc::new(Catalogue::embedded().unwrap());
        let mut evaluator = Evaluator::bytecode(catalogue.clone()).unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/synth-tenant-2000.jsonl"
        ))
        .unwrap();
        let mut by_kind: HashMap<String, Vec<Doc>> = HashMap::new();
        for line in text.lines().take(1000) {
            let doc = Doc::from_json(serde_json::from_str(line).unwrap()).unwrap();
            by_kind
                .entry(doc.kind.to_ascii_lowercase())
                .or_default()
                .push(doc);
        }
        let by_type = catalogue.by_type();
        for (kind, docs) in &by_kind {
            if let Some(rules) = by_type.get(kind) {
                evaluator.evaluate(rules, docs);
            }
        }
        let Backend::Vm(vm) = &evaluator.backend else {
            panic!("not the bytecode VM");
        };
        let called: Vec<String> = vm
            .function_memo_report()
            .into_iter()
            .map(|(name, ..)| name)
            .collect();
        // The report does name the helpers that stay calls.
        assert!(
            called.contains(&"data.scanledger.lib.network.exposures".to_string()),
            "{called:?}"
        );
        for inlined in [
            "data.scanledger.lib.obj",
            "data.scanledger.lib.arr",
            "data.scanledger.lib.prop",
            "data.scanledger.lib.compute.obj",
            "data.scanledger.lib.compute.get",
        ] {
            assert!(!called.iter().any(|c| c == inlined), "{inlined} is called");
        }
    }

    // The memo answers a call by its arguments' allocations. Each argument here is a new
    // object freed right after the call, so the allocator hands its address to the next
    // one: a memo that did not keep its arguments alive would answer with an earlier
    // object's result.
    #[test]
    fn memoized_calls_never_answer_for_a_freed_argument_whose_address_was_reused() {
        let policy = r#"
package t
import rego.v1

double(o) := o.v * 2

wrong := [i | some i in numbers.range(0, 5000); double({"v": i}) != i * 2]

# The same object in every rule and call: answered from the memo after the first.
same := {"v": 21}
repeated := [x | some _ in numbers.range(1, 3000); x := double(same)]

from_input := double(input.o)
"#;
        let mut vm = vm_for(policy, "data.t.wrong");
        for _ in 0..3 {
            let wrong = vm.execute_entry_point_by_name("data.t.wrong").unwrap();
            assert_eq!(wrong, Value::from(Vec::<Value>::new()), "{wrong}");
        }
        let mut vm = vm_for(policy, "data.t.repeated");
        let repeated = vm.execute_entry_point_by_name("data.t.repeated").unwrap();
        assert_eq!(repeated, Value::from(vec![Value::from(42u64); 3000]));
        let report = vm.function_memo_report();
        let (_, lookups, hits, _, off) = report
            .iter()
            .find(|(name, ..)| name == "data.t.double")
            .expect("double was memoized");
        assert_eq!((*lookups, *hits, *off), (3000, 2999, false));
        // A new input per evaluation (as each chunk is): every answer is the new
        // input's.
        let mut vm = vm_for(policy, "data.t.from_input");
        for v in 1..=50u64 {
            let input: Value = serde_json::json!({"o": {"v": v}}).into();
            vm.set_input(input);
            let out = vm.execute_entry_point_by_name("data.t.from_input").unwrap();
            assert_eq!(out, Value::from(2 * v));
        }
    }

    #[test]
    fn entries_are_read_as_lib_finding_arrays_or_as_objects() {
        let details: Value = serde_json::json!({"port": 22}).into();
        let array: Value = serde_json::json!(["/subscriptions/s/x", "rule-1", {"port": 22}]).into();
        let object: Value = serde_json::json!({
            "id": "/subscriptions/s/x", "sub_item": "rule-1", "details": {"port": 22}
        })
        .into();
        for entry in [&array, &object] {
            assert_eq!(string_field(entry, "id").unwrap(), "/subscriptions/s/x");
            assert_eq!(string_field(entry, "sub_item").unwrap(), "rule-1");
            assert_eq!(field(entry, "details"), Some(&details));
            assert_eq!(field(entry, "other"), None);
        }
        let undecided: Value = serde_json::json!(["/subscriptions/s/x", "not fetched"]).into();
        assert_eq!(string_field(&undecided, "reason").unwrap(), "not fetched");
        assert_eq!(field(&undecided, "details"), None);
        // A member of the wrong kind is an error, in either form.
        let bad: Value = serde_json::json!(["/subscriptions/s/x", 7, {}]).into();
        assert!(string_field(&bad, "sub_item").is_err());
    }

    // Helpers of every inlined form, called in every context (statement, `not`, value,
    // inside literals, with an undefined argument), and helpers that must stay calls.
    // The inlined program must give what the called one and the interpreter give on
    // random documents, errors included, and must have inlined what it may.
    const INLINED: &str = r#"
package t
import rego.v1

val(r, k) := object.get(r, ["p", k], null)
flag(r) if r.p.flag
has(r, k) if { _ = r.rel[k] }
missing(r, k) if not has(r, k)
no_p(r) if not is_object(object.get(r, "p", null))
pair(r, k) := {"id": r.id, "k": k, "v": val(r, k)}
same(r) := r.a == r.b
lowered(r) := lower(r.name)
lc(x) := lower(x) if is_string(x) else := ""
a_or(r, d) := r.a if { is_object(r) } else := d
no_a(r) := "absent" if { not r.a } else := r.a
get(x, path) := object.get(x, path, null) if { is_object(x) } else := null
named(r) := lc(r.name) if { _ = r.name } else := lc(r.id)
# Folded where the path is a constant (the catalogue's `lib.prop`), called where not.
prop(r, path, d) := object.get(r, array.concat(["p"], path), d)
has_prop(r, path) if prop(r, path, "__absent__") != "__absent__"

# Not inlined: two definitions, a `_` or unused parameter, a rule reference, an else
# with a body.
two(x) := 1 if x == 1
two(x) := 2 if x == 2
first(x, _) := x
konst(x, y) := x
ks(r) := [k | some k in keys; has(r, k)]
keys := ["a", "b"]
chain(x) := "s" if { is_string(x) } else := "n" if { is_number(x) } else := "o"

rows contains [i, "flag"] if { some i, r in input.rs; flag(r) }
rows contains [i, "not flag"] if { some i, r in input.rs; not flag(r) }
rows contains [i, "flag value", v] if { some i, r in input.rs; v := flag(r) }
rows contains [i, "flag undefined"] if { some i, r in input.rs; not flag(r.nope) }
rows contains [i, "has", k] if { some i, r in input.rs; some k in keys; has(r, k) }
rows contains [i, "missing", k] if { some i, r in input.rs; some k in keys; missing(r, k) }
rows contains [i, "not missing", k] if { some i, r in input.rs; some k in keys; not missing(r, k) }
rows contains [i, "missing undefined"] if { some i, r in input.rs; not missing(r.nope, "a") }
rows contains [i, "missing undefined key"] if { some i, r in input.rs; not missing(r, r.nope) }
rows contains [i, "no_p"] if { some i, r in input.rs; no_p(r) }
rows contains [i, "no_p undefined"] if { some i, r in input.rs; not no_p(r.nope) }
rows contains [i, "pair", pair(r, "x")] if { some i, r in input.rs }
rows contains [i, "val undefined"] if { some i, r in input.rs; not val(r.nope, "x") }
rows contains [i, "same", same(r)] if { some i, r in input.rs }
rows contains [i, "in array", x] if { some i, r in input.rs; x := [flag(r), val(r, "flag")] }
rows contains [i, "two", two(r.n), first(r.n, r.a)] if { some i, r in input.rs }
rows contains [i, "konst"] if { some i, r in input.rs; not konst(r.n, r.nope) }
rows contains [i, "ks", ks(r), lc(r.name)] if { some i, r in input.rs }
rows contains [i, "else", a_or(r, "d"), a_or(r.p, r.a), no_a(r), chain(r.a)] if { some i, r in input.rs }
rows contains [i, "else undefined"] if { some i, r in input.rs; not a_or(r.nope, "d") }
rows contains [i, "else undefined default"] if { some i, r in input.rs; not a_or(r, r.nope) }
rows contains [i, "else value", a_or(r.p, 1)] if { some i, r in input.rs }
rows contains [i, "get", get(r, ["p", "flag"]), get(r.a, ["x"]), named(r)] if { some i, r in input.rs }
rows contains [i, "prop", prop(r, ["flag"], "d"), prop(r, [], "d"), has_prop(r, ["x"])] if { some i, r in input.rs }
rows contains [i, "prop key", prop(r, [r.name], "d"), has_prop(r, [r.a])] if { some i, r in input.rs }
rows contains [i, "lc", lc(r.a)] if { some i, r in input.rs; lc(r.p) == "" }

names := [lowered(r) | some r in input.rs]
by_id := {r.id: named(r) | some r in input.rs; not is_number(r.name)}
"#;

    fn inlined_doc(rng: &mut fastrand::Rng, i: usize) -> serde_json::Value {
        use serde_json::json;
        let any = |rng: &mut fastrand::Rng| match rng.u8(0..6) {
            0 => json!(null),
            1 => json!(true),
            2 => json!(false),
            3 => json!("x"),
            4 => json!({}),
            _ => json!(rng.u8(0..3)),
        };
        let mut doc = json!({"id": format!("r{i}"), "n": any(rng), "a": any(rng), "b": any(rng)});
        let p = match rng.u8(0..4) {
            0 => None,
            1 => Some(json!(null)),
            2 => Some(json!({})),
            _ => Some(json!({"flag": any(rng), "x": any(rng)})),
        };
        if let Some(p) = p {
            doc["p"] = p;
        }
        if rng.bool() {
            let mut rel = serde_json::Map::new();
            for k in ["a", "b"] {
                if rng.bool() {
                    rel.insert(k.into(), any(rng));
                }
            }
            doc["rel"] = rel.into();
        }
        doc["name"] = if rng.u8(0..20) == 0 {
            json!(7)
        } else {
            json!(format!("Name{i}"))
        };
        // Absent members: an inlined `else` helper's value or argument undefined, an
        // array or object comprehension's term undefined.
        for (key, one_in) in [("a", 4), ("name", 10), ("id", 30)] {
            if rng.u8(0..one_in) == 0 {
                doc.as_object_mut().unwrap().remove(key);
            }
        }
        doc
    }

    #[test]
    fn inlined_helpers_give_what_their_calls_and_the_interpreter_give() {
        let mut rng = fastrand::Rng::with_seed(0x1e1e);
        let mut inlined = vm_compiled(INLINED, "data.t.rows", true);
        let mut called = vm_compiled(INLINED, "data.t.rows", false);
        let mut names_inlined = vm_compiled(INLINED, "data.t.names", true);
        let mut names_called = vm_compiled(INLINED, "data.t.names", false);
        let mut by_id_inlined = vm_compiled(INLINED, "data.t.by_id", true);
        let mut by_id_called = vm_compiled(INLINED, "data.t.by_id", false);
        let mut interpreter = regorus::Engine::new();
        interpreter.set_strict_builtin_errors(true);
        interpreter
            .add_policy("t.rego".into(), INLINED.into())
            .unwrap();
        let (mut errors, mut rows) = (0, 0);
        for round in 0..60 {
            let docs: Vec<serde_json::Value> = (0..rng.usize(1..12))
                .map(|i| inlined_doc(&mut rng, i))
                .collect();
            let input: Value = serde_json::json!({ "rs": docs }).into();
            inlined.set_input(input.clone());
            called.set_input(input.clone());
            let got = inlined.execute_entry_point_by_name("data.t.rows").unwrap();
            let by_calls = called.execute_entry_point_by_name("data.t.rows").unwrap();
            assert_eq!(got, by_calls, "round {round}: {docs:?}");
            rows += got.as_set().unwrap().len();
            // The interpreter, one document at a time (given several, regorus 0.14.1's
            // interpreter raises "not an object" on some of these inputs).
            for doc in &docs {
                let one: Value = serde_json::json!({ "rs": [doc] }).into();
                interpreter.set_input(one.clone());
                let expected = interpreter.eval_rule("data.t.rows".into()).unwrap();
                inlined.set_input(one);
                let got = inlined.execute_entry_point_by_name("data.t.rows").unwrap();
                assert_eq!(got, expected, "round {round}: {doc}");
            }
            interpreter.set_input(input.clone());
            // `lower` of a number: an error, on every route.
            let expected = interpreter.eval_rule("data.t.names".into()).map_err(|_| ());
            for vm in [&mut names_inlined, &mut names_called] {
                vm.set_input(input.clone());
                let got = vm
                    .execute_entry_point_by_name("data.t.names")
                    .map_err(|_| ());
                assert_eq!(got, expected, "round {round}: {docs:?}");
            }
            errors += usize::from(expected.is_err());
            // An object comprehension skips a term that is undefined (no name or id).
            let expected = interpreter.eval_rule("data.t.by_id".into()).unwrap();
            for vm in [&mut by_id_inlined, &mut by_id_called] {
                vm.set_input(input.clone());
                let got = vm.execute_entry_point_by_name("data.t.by_id").unwrap();
                assert_eq!(got, expected, "round {round}: {docs:?}");
            }
        }
        assert!(errors > 5 && errors < 55, "{errors} rounds raised an error");
        assert!(rows > 1000, "{rows} rows");

        // What was inlined is never called; what may not be is.
        let calls: HashMap<String, u32> = inlined
            .function_memo_report()
            .into_iter()
            .map(|(name, lookups, ..)| (name, lookups))
            .collect();
        for helper in [
            "val", "flag", "has", "missing", "no_p", "pair", "same", "lc", "a_or", "no_a", "get",
            "named", "prop", "has_prop",
        ] {
            let n = calls.get(&format!("data.t.{helper}")).copied().unwrap_or(0);
            assert_eq!(n, 0, "{helper} was called {n} times");
        }
        // (`konst` is not inlined either, but its one call has an undefined argument:
        // the call is undefined without running it.)
        for helper in ["two", "first", "chain"] {
            let n = calls.get(&format!("data.t.{helper}")).copied().unwrap_or(0);
            assert!(n > 0, "{helper} was inlined");
        }
        let called_calls: u32 = called
            .function_memo_report()
            .iter()
            .filter(|(name, ..)| name == "data.t.flag")
            .map(|(_, lookups, ..)| lookups)
            .sum();
        assert!(called_calls > 0, "without inlining, flag is called");
    }

    /// Inside an inlined helper, `array.concat` over constants (the helper's own literals
    /// and constant arguments) is computed by the compiler: no call is left to run. It
    /// gives what the interpreter gives, and an error it would raise is still raised.
    #[test]
    fn builtins_over_constant_arguments_of_inlined_helpers_are_computed_when_compiling() {
        use regorus::languages::rego::compiler::Compiler;
        const HELPERS: &str = r#"
package t
import rego.v1
prop(r, path, d) := object.get(r, array.concat(["p"], path), d)
has_prop(r, path) if prop(r, path, "__absent__") != "__absent__"
joined(a, b) := array.concat(a, b)
"#;
        // The same calls, with constant arguments and with the same values read from input.
        let folded = format!(
            "{HELPERS}\nv := [prop(input, [\"a\", \"b\"], 0), has_prop(input, [\"c\"]), joined([1], [\"x\"]), joined([], [])]\n"
        );
        let kept = format!(
            "{HELPERS}\nv := [prop(input, input.ab, 0), has_prop(input, input.c), joined(input.one, [\"x\"]), joined(input.none, [])]\n"
        );
        let bad = format!("{HELPERS}\nv := joined(\"x\", [1])\n");
        // Calls of `array.concat` in the code (the builtin table also names folded ones).
        let concat_calls = |policy: &str| {
            let mut engine = regorus::Engine::new();
            engine.add_policy("t.rego".into(), policy.into()).unwrap();
            let compiled = engine.compile_with_entrypoint(&"data.t.v".into()).unwrap();
            let program = Compiler::compile_from_policy_inlining(&compiled, &["data.t.v"]).unwrap();
            program
                .instruction_data
                .builtin_call_params
                .iter()
                .filter(|c| {
                    program.builtin_info_table[usize::from(c.builtin_index)].name == "array.concat"
                })
                .count()
        };
        // Both also compile the helpers' own bodies (each has its call).
        assert_eq!(concat_calls(&kept), concat_calls(&folded) + 4);
        let input: Value = serde_json::json!({
            "p": {"a": {"b": "deep"}, "c": null},
            "ab": ["a", "b"], "c": ["c"], "one": [1], "none": [],
        })
        .into();
        let mut results = Vec::new();
        for policy in [&folded, &kept, &bad] {
            let mut interpreter = regorus::Engine::new();
            interpreter.set_strict_builtin_errors(true);
            interpreter
                .add_policy("t.rego".into(), policy.clone())
                .unwrap();
            interpreter.set_input(input.clone());
            let expected = interpreter.eval_rule("data.t.v".into()).map_err(|_| ());
            let mut vm = vm_compiled(policy, "data.t.v", true);
            vm.set_input(input.clone());
            let got = vm.execute_entry_point_by_name("data.t.v").map_err(|_| ());
            assert_eq!(got, expected, "{policy}");
            results.push(got);
        }
        let want = Value::from(serde_json::json!(["deep", true, [1, "x"], []]));
        assert_eq!(results[0], Ok(want.clone()));
        assert_eq!(results[1], Ok(want));
        // A fold that fails leaves the call, which raises the error as before.
        assert_eq!(results[2], Err(()));
    }

    /// A JSON value with the shapes ARM sends and the odd ones: nested objects and
    /// arrays, keys that differ in case, by a prefix or by a non-ASCII byte, big and
    /// negative numbers, floats.
    fn json(rng: &mut fastrand::Rng, depth: u32) -> serde_json::Value {
        use serde_json::json;
        match rng.u32(0..if depth == 0 { 6 } else { 8 }) {
            0 => json!(null),
            1 => json!(rng.bool()),
            2 => json!(rng.u64(..)),
            3 => json!(-rng.i64(1..)),
            4 => json!(rng.f64() * 1e6),
            5 => json!(word(rng)),
            6 => serde_json::Value::Array(
                (0..rng.usize(0..4)).map(|_| json(rng, depth - 1)).collect(),
            ),
            _ => serde_json::Value::Object(
                (0..rng.usize(0..8))
                    .map(|_| (word(rng), json(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    /// JSON text of `v` as nobody sorts it: keys shuffled, some written twice (an earlier
    /// copy with another value: the last counts), some key letters `\u`-escaped.
    fn text_of(rng: &mut fastrand::Rng, v: &serde_json::Value) -> String {
        let key = |rng: &mut fastrand::Rng, k: &str| {
            let escaped: String = k
                .chars()
                .map(|c| match c {
                    'a'..='z' if rng.u8(..4) == 0 => format!("\\u{:04x}", c as u32),
                    c => serde_json::to_string(&c.to_string())
                        .unwrap()
                        .trim_matches('"')
                        .to_owned(),
                })
                .collect();
            format!("\"{escaped}\"")
        };
        match v {
            serde_json::Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(|i| text_of(rng, i)).collect();
                format!("[{}]", inner.join(", "))
            }
            serde_json::Value::Object(map) => {
                let mut entries: Vec<String> = Vec::new();
                let mut order: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                rng.shuffle(&mut order);
                for (k, v) in order {
                    // Repeated keys (the last one counts), up to several times.
                    while rng.u8(..5) == 0 {
                        entries.push(format!("{}: {}", key(rng, k), rng.u32(..)));
                    }
                    entries.push(format!("{}: {}", key(rng, k), text_of(rng, v)));
                }
                format!("{{{}}}", entries.join(", "))
            }
            other => other.to_string(),
        }
    }

    /// An object whose keys come in an order seen before is built with the order learnt
    /// then: each object keeps its own values, a repeated key its last value, and
    /// orders of the same keys are told apart.
    #[test]
    fn objects_in_a_key_order_seen_before_are_built_as_their_trees_convert() {
        let mut rng = fastrand::Rng::with_seed(0x5a9e);
        let mut keys = Keys::default();
        let orders: [&[&str]; 6] = [
            &["b", "a", "c"],
            &["a", "b", "c"],
            &["c", "b", "a", "b"],
            &["z", "é", "a\u{0}", "aaaaaaaa", "a"],
            &["properties", "id"],
            &["x"],
        ];
        for _ in 0..2_000 {
            let order = orders[rng.usize(..orders.len())];
            let members: Vec<String> = order
                .iter()
                .map(|k| {
                    let value = json(&mut rng, 2);
                    format!(
                        "{}: {}",
                        serde_json::to_string(k).unwrap(),
                        text_of(&mut rng, &value)
                    )
                })
                .collect();
            let text = format!("{{{}}}", members.join(", "));
            let tree: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(keys.parse(&text).unwrap(), keys.rego(tree), "{text}");
        }
        // Each order above was learnt once (and nested objects' orders besides).
        assert!(
            keys.shapes.len() >= orders.len() - 1,
            "{}",
            keys.shapes.len()
        );
    }

    /// A resource text is parsed straight into the value its tree converts to: keys in
    /// any order, repeated or escaped; every kind of number; and `Doc::from_listed` gives
    /// the document `from_json_with` gives, for types with facts and without, a
    /// document's own `facts` key dropped.
    #[test]
    fn texts_parse_to_the_values_their_trees_convert_to() {
        let mut rng = fastrand::Rng::with_seed(8);
        let mut keys = Keys::default();
        for _ in 0..3_000 {
            let doc = json(&mut rng, 4);
            let text = text_of(&mut rng, &doc);
            // Against the tree of the text, not `doc`: serde_json reads a float to
            // within an ulp of what it wrote.
            let tree: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(keys.parse(&text).unwrap(), keys.rego(tree), "{text}");
            // A text cut short fails, and leaves nothing behind for the next one.
            let half = text.len() / 2;
            if half > 0 && text.is_char_boundary(half) && doc.is_object() {
                let cut = &text[..half];
                assert!(keys.parse(cut).is_err(), "{cut}");
                assert!(keys.entries.is_empty() && keys.items.is_empty());
            }
        }
        for kind in [
            "Microsoft.Storage/storageAccounts",
            "microsoft.network/networksecuritygroups",
            "Microsoft.Sql/servers",
            "T/t",
        ] {
            for i in 0..200 {
                let mut doc = serde_json::json!({
                    "id": format!("/subscriptions/s/resourceGroups/rg/providers/{kind}/r{i}"),
                    "type": kind,
                    "properties": json(&mut rng, 3),
                });
                if i % 2 == 0 {
                    doc["name"] = serde_json::json!(format!("n{i}"));
                }
                if i % 3 == 0 {
                    doc["facts"] = json(&mut rng, 2);
                }
                let text = text_of(&mut rng, &doc);
                let listed = super::super::Listed::Text(
                    super::super::ResourceText::read(text.clone().into_bytes()).unwrap(),
                );
                let ours = Doc::from_listed(listed, &mut keys).unwrap();
                let want =
                    Doc::from_json_with(serde_json::from_str(&text).unwrap(), &mut keys).unwrap();
                assert_eq!(
                    (&ours.id, &ours.name, &ours.kind),
                    (&want.id, &want.name, &want.kind)
                );
                assert_eq!(ours.value, want.value, "{text}");
            }
        }
    }

    // Documents reach the rules through `Keys::rego`, not regorus' own conversion: the two
    // must give the same value, key order included (lookups binary-search it).
    #[test]
    fn documents_convert_to_the_rego_values_regorus_itself_gives() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut keys = Keys::default();
        for _ in 0..3_000 {
            let doc = json(&mut rng, 4);
            let ours = keys.rego(doc.clone());
            assert_eq!(ours, Value::from(doc.clone()), "{doc}");
            if let Value::Object(o) = &ours {
                for (k, v) in o.iter() {
                    assert_eq!(&ours[k], v, "lookup of {k} in {doc}");
                }
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
        let mut seen = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let page: serde_json::Value = serde_json::from_str(&text).unwrap();
            for r in page["value"].as_array().cloned().unwrap_or_default() {
                assert_eq!(keys.rego(r.clone()), Value::from(r));
                seen += 1;
            }
        }
        assert!(seen >= 20, "{seen} demo documents");
    }
}
