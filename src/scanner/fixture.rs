//! The fixture source: ARM-shaped JSON documents on disk. A `.json` file holds one
//! resource, an array of resources, or an ARM list page (`{"value": [...]}`); a `.jsonl`
//! file holds one resource per line and is streamed line by line (large synthetic
//! tenants). A folder is read file by file in name order, so memory holds one file's
//! documents, or one line, at a time. Resources are handed over as checked texts
//! ([`ResourceText`]), parsed on the evaluation threads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};

use super::{Inventory, InventorySource, Listed, Needs, Resource};

use crate::domain::{FailureCode, SubscriptionId};
use crate::worker::ScanError;

pub struct FixtureSource {
    path: PathBuf,
    delay: Duration,
}

impl FixtureSource {
    pub fn new(path: PathBuf, delay: Duration) -> Self {
        Self { path, delay }
    }
}

fn files(path: &Path) -> Result<Vec<PathBuf>, ScanError> {
    let unavailable = |e: std::io::Error| {
        ScanError::new(
            FailureCode::SourceUnavailable,
            format!("fixture {}: {e}", path.display()),
        )
    };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(unavailable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "jsonl") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Why streaming a document stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("`value` is not an array")]
    ValueNotArray,
    #[error("not a resource document")]
    NotADocument,
    /// The receiver went away (the scan stopped): not an error of the file.
    #[error("stopped")]
    Stopped,
}

/// Call `emit` with each resource of one JSON document: a resource, an array of them, or
/// an ARM list page (`{"value": [...]}`, other keys such as `nextLink` ignored). The
/// array is read element by element, so a 70 MB page never exists as one tree: memory
/// holds one resource at a time. `emit` returns false to stop.
pub fn stream_document<R: std::io::Read>(
    reader: R,
    emit: &mut dyn FnMut(Resource) -> bool,
) -> Result<(), StreamError> {
    use serde::de::{DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};

    /// Hands every element of a sequence to `emit`.
    struct Elements<'a>(&'a mut dyn FnMut(Resource) -> bool);
    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = Result<(), StreamError>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of resources")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while let Some(item) = seq.next_element::<Resource>()? {
                if !(self.0)(item) {
                    // Drain without building values: the rest is not wanted.
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    return Ok(Err(StreamError::Stopped));
                }
            }
            Ok(Ok(()))
        }
    }
    impl<'de> DeserializeSeed<'de> for Elements<'_> {
        type Value = Result<(), StreamError>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    /// The top level: an array, a list page, or one resource.
    struct Top<'a>(&'a mut dyn FnMut(Resource) -> bool);
    impl<'de> Visitor<'de> for Top<'_> {
        type Value = Result<(), StreamError>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a resource, an array of resources or a list page")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Elements(self.0).visit_seq(seq)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let emit = self.0;
            // Keys other than `value` are kept only in case this is a single resource.
            let mut other = serde_json::Map::new();
            let mut page = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "value" && page.is_none() {
                    let is_array = map.next_value_seed(ValueSeed(Elements(&mut *emit)))?;
                    page = Some(is_array);
                } else {
                    other.insert(key, map.next_value()?);
                }
            }
            Ok(match page {
                Some(result) => result,
                None => {
                    emit(Resource::Object(other));
                    Ok(())
                }
            })
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Err(StreamError::NotADocument))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Err(StreamError::NotADocument))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Err(StreamError::NotADocument))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Err(StreamError::NotADocument))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Err(StreamError::NotADocument))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Err(StreamError::NotADocument))
        }
    }

    /// `value`: streamed when it is an array, refused otherwise.
    struct ValueSeed<'a>(Elements<'a>);
    impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
        type Value = Result<(), StreamError>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(ValueVisitor(self.0))
        }
    }
    struct ValueVisitor<'a>(Elements<'a>);
    impl<'de> Visitor<'de> for ValueVisitor<'_> {
        type Value = Result<(), StreamError>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of resources")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            self.0.visit_seq(seq)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(Err(StreamError::ValueNotArray))
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Err(StreamError::ValueNotArray))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Err(StreamError::ValueNotArray))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Err(StreamError::ValueNotArray))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Err(StreamError::ValueNotArray))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Err(StreamError::ValueNotArray))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Err(StreamError::ValueNotArray))
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = (&mut de).deserialize_any(Top(emit))?;
    if !matches!(result, Err(StreamError::Stopped)) {
        de.end()?;
    }
    result
}

/// A resource's JSON text: well-formed (as strictly as a parse into a tree), an object
/// with a string `id` and `type`.
#[derive(Clone, Debug)]
pub struct ResourceText {
    id: Box<str>,
    kind: Box<str>,
    /// Checked UTF-8 once here, so the evaluation threads parse it without checking
    /// every string again.
    json: Box<str>,
}

/// Why a text is not a [`ResourceText`].
#[derive(Debug)]
pub enum TextError {
    Json(serde_json::Error),
    /// Why, as [`not_a_resource`] says it.
    NotResource(String),
}

impl ResourceText {
    /// Check one resource's text, reading only its `id` and `type` (every other value is
    /// read as a parse into a tree reads it, so what is accepted here parses there).
    pub fn read(json: Vec<u8>) -> Result<Self, TextError> {
        let json = match String::from_utf8(json) {
            Ok(json) => json,
            // Only inside a string (the rest is ASCII JSON): serde says where.
            Err(e) => {
                return Err(
                    match serde_json::from_slice::<serde_json::Value>(e.as_bytes()) {
                        Err(e) => TextError::Json(e),
                        Ok(_) => TextError::NotResource("the text is not UTF-8".into()),
                    },
                )
            }
        };
        let head: Head = serde_json::from_str(&json).map_err(TextError::Json)?;
        match head {
            Head {
                id: Some(id),
                kind: Some(kind),
            } => Ok(Self {
                id: id.into(),
                kind: kind.into(),
                json: json.into(),
            }),
            _ => {
                let doc: Resource = serde_json::from_str(&json).map_err(TextError::Json)?;
                let why = not_a_resource(&doc).unwrap_or_default();
                Err(TextError::NotResource(why))
            }
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn json(&self) -> &str {
        &self.json
    }

    /// The text's tree.
    pub fn document(&self) -> Resource {
        serde_json::from_str(&self.json).expect("a resource text parses: checked when read")
    }
}

/// A document's `id` and `type` when they are strings (the last of a repeated key, as
/// a tree keeps it).
#[derive(Default)]
struct Head {
    id: Option<String>,
    kind: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Head;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
                let mut head = Head::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => head.id = map.next_value::<Any<true>>()?.0,
                        Key::Type => head.kind = map.next_value::<Any<true>>()?.0,
                        Key::Other => {
                            map.next_value::<Any>()?;
                        }
                    }
                }
                Ok(head)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Head, A::Error> {
                Any::drain_seq(seq).map(|_| Head::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Head, E> {
                Ok(Head::default())
            }
            fn visit_unit<E>(self) -> Result<Head, E> {
                Ok(Head::default())
            }
        }
        d.deserialize_any(Fields)
    }
}

enum Key {
    Id,
    Type,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "id" => Key::Id,
                    "type" => Key::Type,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(Name)
    }
}

/// Any JSON value, read through `deserialize_any` as a tree reads it (serde's
/// `IgnoredAny` skips numbers without converting them, and would let `1e999` through);
/// a string is kept if `KEEP`.
struct Any<const KEEP: bool = false>(Option<String>);

impl Any {
    fn drain_seq<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Any, A::Error> {
        while seq.next_element::<Any>()?.is_some() {}
        Ok(Any(None))
    }
}

impl<'de, const KEEP: bool> serde::Deserialize<'de> for Any<KEEP> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct V<const KEEP: bool>;
        impl<'de, const KEEP: bool> Visitor<'de> for V<KEEP> {
            type Value = Any<KEEP>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any<KEEP>, A::Error> {
                while map.next_key::<Any>()?.is_some() {
                    map.next_value::<Any>()?;
                }
                Ok(Any(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Any<KEEP>, A::Error> {
                Any::drain_seq(seq).map(|_| Any(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Any<KEEP>, E> {
                Ok(Any(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Any<KEEP>, E> {
                Ok(Any(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Any<KEEP>, E> {
                Ok(Any(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Any<KEEP>, E> {
                Ok(Any(None))
            }
            fn visit_str<E>(self, s: &str) -> Result<Any<KEEP>, E> {
                Ok(Any(KEEP.then(|| s.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Any<KEEP>, E> {
                Ok(Any(None))
            }
        }
        d.deserialize_any(V::<KEEP>)
    }
}

/// What [`cut_document`] did.
#[derive(Debug, PartialEq)]
enum Cut {
    /// Every element was handed over.
    Done,
    /// `emit` asked to stop.
    Stopped,
    /// Not a shape it cuts, or not well-formed, after handing over this many elements:
    /// the caller reads the document with serde, past those.
    Other(usize),
}

/// Hand over the text of each element of a document's array: a top-level array, or a
/// list page whose first key is `value` (how ARM and exports write it). Only strings
/// and brackets are followed, so no value is built; each text is checked where it is
/// used (`ResourceText::read`), and anything else, or anything odd, is `Cut::Other`.
fn cut_document<R: std::io::Read>(
    src: R,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> std::io::Result<Cut> {
    let mut c = Cutter {
        src,
        buf: Vec::with_capacity(CUT_BLOCK),
        at: 0,
        eof: false,
    };
    let page = match c.peek()? {
        Some(b'[') => false,
        Some(b'{') => {
            c.at += 1;
            if c.peek()?.is_none() || !c.literal(b"\"value\"")? || c.peek()? != Some(b':') {
                return Ok(Cut::Other(0));
            }
            c.at += 1;
            if c.peek()? != Some(b'[') {
                return Ok(Cut::Other(0));
            }
            true
        }
        _ => return Ok(Cut::Other(0)),
    };
    c.at += 1;
    let mut emitted = 0;
    if c.peek()? == Some(b']') {
        c.at += 1;
    } else {
        loop {
            if c.peek()?.is_none() {
                return Ok(Cut::Other(emitted));
            }
            let Some(len) = c.value()? else {
                return Ok(Cut::Other(emitted));
            };
            if !emit(&c.buf[c.at..c.at + len]) {
                return Ok(Cut::Stopped);
            }
            emitted += 1;
            c.at += len;
            match c.peek()? {
                Some(b',') => c.at += 1,
                Some(b']') => {
                    c.at += 1;
                    break;
                }
                _ => return Ok(Cut::Other(emitted)),
            }
        }
    }
    if page {
        // The rest of the page (`nextLink`, ...) must close the object well-formed.
        let mut rest = b"{\"value\":[]".to_vec();
        rest.extend_from_slice(&c.buf[c.at..]);
        c.src.read_to_end(&mut rest)?;
        if serde_json::from_slice::<Any>(&rest).is_err() {
            return Ok(Cut::Other(emitted));
        }
    } else if c.peek()?.is_some() {
        return Ok(Cut::Other(emitted));
    }
    Ok(Cut::Done)
}

const CUT_BLOCK: usize = 1 << 20;

/// A reading buffer: `buf[at..]` is not consumed yet.
struct Cutter<R> {
    src: R,
    buf: Vec<u8>,
    at: usize,
    eof: bool,
}

impl<R: std::io::Read> Cutter<R> {
    /// Read more, dropping what is consumed; false at the end of the input.
    fn more(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let n = self.buf.len();
        self.buf.resize(n + CUT_BLOCK, 0);
        let got = loop {
            match self.src.read(&mut self.buf[n..]) {
                Ok(got) => break got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(n);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(n + got);
        self.eof = got == 0;
        Ok(got > 0)
    }

    /// The next byte that is not JSON whitespace (skipped), not consumed.
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            while let Some(&b) = self.buf.get(self.at) {
                if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(b));
                }
                self.at += 1;
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Consume `lit` if the input goes on with it.
    fn literal(&mut self, lit: &[u8]) -> std::io::Result<bool> {
        while self.buf.len() - self.at < lit.len() {
            if !self.more()? {
                return Ok(false);
            }
        }
        let found = self.buf[self.at..].starts_with(lit);
        if found {
            self.at += lit.len();
        }
        Ok(found)
    }

    /// The length of the value starting at `at`; `None` when the input ends inside it.
    fn value(&mut self) -> std::io::Result<Option<usize>> {
        let mut scan = Scan::default();
        let mut done = 0;
        loop {
            if let Some(n) = scan.advance(&self.buf[self.at + done..]) {
                return Ok(Some(done + n));
            }
            done = self.buf.len() - self.at;
            if !self.more()? {
                return Ok(scan.scalar().then_some(done).filter(|&n| n > 0));
            }
        }
    }
}

/// Where the scan of one value stands, to go on after more input is read.
#[derive(Default)]
struct Scan {
    first: Option<u8>,
    depth: u32,
    in_str: bool,
    escaped: bool,
}

impl Scan {
    /// A number or literal: it ends at a delimiter or at the end of the input.
    fn scalar(&self) -> bool {
        !matches!(self.first, None | Some(b'{' | b'[' | b'"'))
    }

    /// Go on over `bytes`; `Some(n)`: the value ends after `n` of them.
    fn advance(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        if self.first.is_none() {
            let &b = bytes.first()?;
            self.first = Some(b);
            match b {
                b'{' | b'[' => self.depth = 1,
                b'"' => self.in_str = true,
                _ => {}
            }
            i = 1;
        }
        if self.scalar() {
            return bytes[i..]
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                .map(|p| i + p);
        }
        while i < bytes.len() {
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Most of a document is text: jump to its next quote or backslash.
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None => return None,
                    Some(p) => {
                        i += p;
                        if bytes[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_str = false;
                            if self.depth == 0 {
                                return Some(i + 1);
                            }
                        }
                    }
                }
            } else {
                match bytes[i] {
                    b'"' => self.in_str = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        None
    }
}

/// The shapes a fixture file may take, for messages refusing another.
pub const ACCEPTED_SHAPES: &str = "an ARM list page {\"value\": [...]}, a JSON array of \
     resources, one resource, or JSON lines (.jsonl, one resource per line)";

/// Why a document is not a resource, if it is not: a resource has a string `id` and
/// `type`. Checked before the subscription filter, so a file of another shape (say
/// `{"subscription_id": …, "resources": […]}`) is refused instead of read as nothing.
pub fn not_a_resource(doc: &Resource) -> Option<String> {
    let has = |k: &str| doc.get(k).is_some_and(|v| v.is_string());
    if has("id") && has("type") {
        return None;
    }
    let keys = match doc.as_object() {
        Some(map) if !map.is_empty() => {
            let keys: Vec<&str> = map.keys().take(6).map(String::as_str).collect();
            format!(" (its keys: {})", keys.join(", "))
        }
        _ => String::new(),
    };
    Some(format!(
        "a document without a string `id` and `type` is not a resource{keys}; \
         accepted: {ACCEPTED_SHAPES}"
    ))
}

/// Why a fixture could not be read (`rules bench`, which reads outside a scan).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// Every resource of a fixture file or folder (all subscriptions), on this thread,
/// one at a time.
pub fn read_all(path: &Path, emit: &mut dyn FnMut(Resource)) -> Result<(), ReadError> {
    use std::io::BufRead;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReadError::Io { path, source }
    };
    let list = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        files(path).map_err(|e| ReadError::Invalid {
            path: path.to_path_buf(),
            detail: e.detail,
        })?
    };
    for file in list {
        let reader = std::io::BufReader::with_capacity(
            1 << 16,
            std::fs::File::open(&file).map_err(io(&file))?,
        );
        if file.extension().is_some_and(|x| x == "jsonl") {
            for (n, line) in reader.lines().enumerate() {
                let line = line.map_err(io(&file))?;
                if line.trim().is_empty() {
                    continue;
                }
                let item: Resource =
                    serde_json::from_str(&line).map_err(|e| ReadError::Invalid {
                        path: file.clone(),
                        detail: format!("line {}: {e}", n + 1),
                    })?;
                if let Some(why) = not_a_resource(&item) {
                    return Err(ReadError::Invalid {
                        path: file.clone(),
                        detail: format!("line {}: {why}", n + 1),
                    });
                }
                emit(item);
            }
        } else {
            let mut refused = None;
            let result = stream_document(reader, &mut |r| {
                if let Some(why) = not_a_resource(&r) {
                    refused = Some(why);
                    return false;
                }
                emit(r);
                true
            });
            let invalid = |detail| ReadError::Invalid {
                path: file.clone(),
                detail,
            };
            if let Some(why) = refused {
                return Err(invalid(why));
            }
            result.map_err(|e| invalid(e.to_string()))?;
        }
    }
    Ok(())
}

/// A `.json` file, read by a blocking thread through a bounded channel: the elements of
/// an array or list page are cut as texts (`cut_document`), anything else is parsed
/// with serde (`stream_document`), as is a document from where cutting found it odd,
/// so its error is serde's, naming the line and column.
fn document(file: PathBuf) -> BoxStream<'static, Result<Listed, ScanError>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Listed, ScanError>>(1024);
    tokio::task::spawn_blocking(move || {
        let open = || {
            std::fs::File::open(&file).map_err(|e| {
                ScanError::new(
                    FailureCode::SourceUnavailable,
                    format!("{}: {e}", file.display()),
                )
            })
        };
        let refuse = |why: String| {
            ScanError::new(
                FailureCode::InvalidInventory,
                format!("{}: {why}", file.display()),
            )
        };
        let f = match open() {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        // Texts handed over, and whether cutting ended the reading (the scan is gone,
        // or a document is not a resource).
        let (mut emitted, mut ended) = (0usize, false);
        let cut = cut_document(f, &mut |text| match ResourceText::read(text.to_vec()) {
            Ok(text) => {
                ended = tx.blocking_send(Ok(Listed::Text(text))).is_err();
                emitted += 1;
                !ended
            }
            Err(TextError::NotResource(why)) => {
                ended = true;
                let _ = tx.blocking_send(Err(refuse(why)));
                false
            }
            // serde says where, reading the document whole (below).
            Err(TextError::Json(_)) => false,
        });
        match cut {
            Ok(Cut::Done) => return,
            Ok(_) if ended => return,
            Ok(Cut::Stopped | Cut::Other(_)) => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(ScanError::new(
                    FailureCode::SourceUnavailable,
                    format!("{}: {e}", file.display()),
                )));
                return;
            }
        }
        // Another shape, or something odd: serde reads it, past the texts handed over.
        let f = match open() {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let reader = std::io::BufReader::with_capacity(1 << 16, f);
        let (mut seen, mut refused) = (0usize, false);
        let result = stream_document(reader, &mut |r| {
            seen += 1;
            if seen <= emitted {
                return true;
            }
            if let Some(why) = not_a_resource(&r) {
                refused = true;
                let _ = tx.blocking_send(Err(refuse(why)));
                return false;
            }
            tx.blocking_send(Ok(Listed::Parsed(r))).is_ok()
        });
        if refused {
            return;
        }
        match result {
            Ok(()) | Err(StreamError::Stopped) => {}
            Err(e) => {
                let code = match &e {
                    StreamError::Json(j) if j.is_io() => FailureCode::SourceUnavailable,
                    _ => FailureCode::InvalidInventory,
                };
                let _ = tx.blocking_send(Err(ScanError::new(
                    code,
                    format!("{}: {e}", file.display()),
                )));
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

/// One resource per line; blank lines are skipped. Read by a blocking thread through a
/// bounded channel, as a `.json` file is (checking each line's text is CPU work, kept
/// off the async runtime).
fn lines(file: PathBuf) -> BoxStream<'static, Result<Listed, ScanError>> {
    use std::io::BufRead;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Listed, ScanError>>(1024);
    tokio::task::spawn_blocking(move || {
        let unavailable = |e: std::io::Error| {
            ScanError::new(
                FailureCode::SourceUnavailable,
                format!("{}: {e}", file.display()),
            )
        };
        let f = match std::fs::File::open(&file) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(unavailable(e)));
                return;
            }
        };
        let mut reader = std::io::BufReader::with_capacity(1 << 16, f);
        let mut line = Vec::new();
        for n in 1.. {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(unavailable(e)));
                    return;
                }
            }
            // As `AsyncBufReadExt::lines` read them before: without "\n" or "\r\n", UTF-8
            // checked first (an error reported as the read's), blank lines skipped.
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let Ok(checked) = std::str::from_utf8(text) else {
                let e = std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                );
                let _ = tx.blocking_send(Err(unavailable(e)));
                return;
            };
            if checked.trim().is_empty() {
                continue;
            }
            let invalid = |detail: String| {
                ScanError::new(
                    FailureCode::InvalidInventory,
                    format!("{} line {n}: {detail}", file.display()),
                )
            };
            let item = match ResourceText::read(text.to_vec()) {
                Ok(text) => Ok(Listed::Text(text)),
                Err(TextError::Json(e)) => Err(invalid(e.to_string())),
                Err(TextError::NotResource(why)) => Err(invalid(why)),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

/// Does this resource id belong to the subscription? ARM ids are case-insensitive.
fn in_subscription(resource: &Listed, prefix: &str) -> bool {
    resource.id().is_some_and(|id| {
        id.len() >= prefix.len() && id[..prefix.len()].eq_ignore_ascii_case(prefix)
    })
}

impl InventorySource for FixtureSource {
    /// A fixture is a whole tenant: every type is listed (what it holds is all there is).
    fn list(&self, subscription: &SubscriptionId, _needs: &Needs) -> Inventory {
        Inventory::complete(self.resources(subscription))
    }
}

impl FixtureSource {
    fn resources(
        &self,
        subscription: &SubscriptionId,
    ) -> BoxStream<'static, Result<Listed, ScanError>> {
        let prefix = format!("/subscriptions/{subscription}/");
        let delay = self.delay;
        let files = match files(&self.path) {
            Ok(f) => f,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        stream::iter(files)
            .flat_map(|file| {
                if file.extension().is_some_and(|x| x == "jsonl") {
                    return lines(file);
                }
                document(file)
            })
            .filter(move |r| {
                let keep = r.as_ref().map_or(true, |r| in_subscription(r, &prefix));
                async move { keep }
            })
            .then(move |r| async move {
                if !delay.is_zero() && r.is_ok() {
                    tokio::time::sleep(delay).await;
                }
                r
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: PathBuf, sub: &str) -> Vec<Result<Listed, ScanError>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let source = FixtureSource::new(path, Duration::ZERO);
        let sub = SubscriptionId::parse(sub).unwrap();
        rt.block_on(source.list(&sub, &Needs::default()).resources.collect())
    }

    fn collect(path: PathBuf, sub: &str) -> Vec<Result<Resource, ScanError>> {
        listed(path, sub)
            .into_iter()
            .map(|r| r.map(Listed::into_document))
            .collect()
    }

    /// What reading `file` gave before texts were cut: serde's stream of trees.
    fn read_by_serde(file: &Path, sub: &str) -> Vec<Result<Resource, ScanError>> {
        let prefix = format!("/subscriptions/{sub}/");
        let mut out = Vec::new();
        let reader = std::fs::File::open(file).unwrap();
        let mut refused = false;
        let result = stream_document(reader, &mut |r| {
            if let Some(why) = not_a_resource(&r) {
                refused = true;
                out.push(Err(ScanError::new(
                    FailureCode::InvalidInventory,
                    format!("{}: {why}", file.display()),
                )));
                return false;
            }
            if in_subscription(&Listed::Parsed(r.clone()), &prefix) {
                out.push(Ok(r));
            }
            true
        });
        match result {
            Err(_) if refused => {}
            Ok(()) | Err(StreamError::Stopped) => {}
            Err(e) => out.push(Err(ScanError::new(
                FailureCode::InvalidInventory,
                format!("{}: {e}", file.display()),
            ))),
        }
        out
    }

    fn same(a: &[Result<Resource, ScanError>], b: &[Result<Resource, ScanError>]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|pair| match pair {
                (Ok(x), Ok(y)) => x == y,
                (Err(x), Err(y)) => x.code == y.code && x.detail == y.detail,
                _ => false,
            })
    }

    /// A reader handing out a few bytes at a time, so values cross buffer ends.
    struct Trickle<'a>(&'a [u8], fastrand::Rng);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.usize(1..8).min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A random resource: strings holding quotes, backslashes, brackets and non-ASCII
    /// text; nested arrays and objects; every kind of number.
    fn resource(rng: &mut fastrand::Rng, sub: &str, n: usize) -> serde_json::Value {
        fn text(rng: &mut fastrand::Rng) -> String {
            const PARTS: [&str; 12] = [
                "a",
                "\"",
                "\\",
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "é",
                "\u{1F600}",
                " ",
            ];
            (0..rng.usize(0..6))
                .map(|_| PARTS[rng.usize(..PARTS.len())])
                .collect()
        }
        fn value(rng: &mut fastrand::Rng, depth: u32) -> serde_json::Value {
            use serde_json::json;
            match rng.u32(0..if depth == 0 { 6 } else { 8 }) {
                0 => json!(null),
                1 => json!(rng.bool()),
                2 => json!(rng.u64(..)),
                3 => json!(-rng.i64(1..) as f64 / 7.0),
                4 => json!(text(rng)),
                5 => json!(-rng.i64(1..)),
                6 => serde_json::Value::Array(
                    (0..rng.usize(0..4))
                        .map(|_| value(rng, depth - 1))
                        .collect(),
                ),
                _ => serde_json::Value::Object(
                    (0..rng.usize(0..4))
                        .map(|_| (text(rng), value(rng, depth - 1)))
                        .collect(),
                ),
            }
        }
        serde_json::json!({
            "id": format!("/subscriptions/{sub}/resourceGroups/rg/providers/T/t/r{n}{}", text(rng)),
            "type": "T/t",
            "properties": value(rng, 3),
            "tags": value(rng, 2),
        })
    }

    /// JSON text of `v` with random whitespace between tokens.
    fn spaced(rng: &mut fastrand::Rng, v: &serde_json::Value) -> String {
        let ws =
            |rng: &mut fastrand::Rng| [" ", "", "\n", "\t", "\r\n  "][rng.usize(..5)].to_owned();
        match v {
            serde_json::Value::Array(items) => {
                let inner: Vec<String> = items
                    .iter()
                    .map(|i| format!("{}{}{}", ws(rng), spaced(rng, i), ws(rng)))
                    .collect();
                format!("[{}{}]", inner.join(","), ws(rng))
            }
            serde_json::Value::Object(map) => {
                let inner: Vec<String> = map
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}{}{}:{}{}",
                            ws(rng),
                            serde_json::to_string(k).unwrap(),
                            ws(rng),
                            spaced(rng, v),
                            ws(rng)
                        )
                    })
                    .collect();
                format!("{{{}{}}}", inner.join(","), ws(rng))
            }
            other => other.to_string(),
        }
    }

    /// An array or a list page is cut into the very elements serde streams from it,
    /// whatever the whitespace and however the input arrives.
    #[test]
    fn cut_texts_are_the_elements_serde_streams() {
        let sub = "00000000-0000-0000-0000-000000000001";
        let mut rng = fastrand::Rng::with_seed(11);
        for round in 0..400 {
            let items: Vec<serde_json::Value> = (0..rng.usize(0..6))
                .map(|n| resource(&mut rng, sub, n))
                .collect();
            let array = serde_json::Value::Array(items.clone());
            let doc = match round % 3 {
                0 => spaced(&mut rng, &array),
                1 => format!("{{ \"value\" :{}}}", spaced(&mut rng, &array)),
                _ => format!(
                    "\n{{\"value\": {}, \"nextLink\": {}}}  ",
                    spaced(&mut rng, &array),
                    spaced(&mut rng, &serde_json::json!({"a": ["]", "}"]}))
                ),
            };
            let mut texts = Vec::new();
            let cut = cut_document(Trickle(doc.as_bytes(), rng.fork()), &mut |t| {
                texts.push(serde_json::from_slice::<Resource>(t).unwrap());
                true
            })
            .unwrap();
            assert_eq!(cut, Cut::Done, "{doc}");
            // The trees serde streams from the document (floats as serde reads them).
            let mut want = Vec::new();
            stream_document(doc.as_bytes(), &mut |r| {
                want.push(r);
                true
            })
            .unwrap();
            assert_eq!(want.len(), items.len());
            assert_eq!(texts, want, "{doc}");
        }
        // Shapes it leaves to serde: `value` not first, one resource, not JSON.
        for doc in [
            r#"{"nextLink": null, "value": []}"#,
            r#"{"id": "a"}"#,
            "",
            "42",
        ] {
            let cut = cut_document(doc.as_bytes(), &mut |_| true).unwrap();
            assert_eq!(cut, Cut::Other(0), "{doc}");
        }
    }

    /// A document broken anywhere (cut short, a byte changed) reads exactly as serde read
    /// it: the same resources, then the same error, line and column included.
    #[test]
    fn a_broken_document_reads_exactly_as_serde_reads_it() {
        let sub = "00000000-0000-0000-0000-000000000001";
        let dir = std::env::temp_dir().join(format!("scanledger-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("page.json");
        let mut rng = fastrand::Rng::with_seed(3);
        let items: Vec<serde_json::Value> = (0..4).map(|n| resource(&mut rng, sub, n)).collect();
        let page = format!(
            "{{\"value\": {}, \"nextLink\": null}}",
            spaced(&mut rng, &serde_json::Value::Array(items))
        );
        let mut broken: Vec<Vec<u8>> = (0..page.len())
            .step_by(7)
            .map(|n| page.as_bytes()[..n].to_vec())
            .collect();
        for _ in 0..300 {
            let mut b = page.clone().into_bytes();
            let at = rng.usize(..b.len());
            let swap = b"\"{}[],:\\ax1-e";
            b[at] = swap[rng.usize(..swap.len())];
            broken.push(b);
        }
        broken.push(page.replace("\"type\"", "\"kind\"").into_bytes());
        broken.push(
            page.replacen("\"properties\"", "\"properties\": 1e999, \"p\"", 1)
                .into_bytes(),
        );
        // Not UTF-8, inside a value and inside a key (texts are checked once, when cut).
        for bad in [&b"\"caf\xe9\""[..], b"\"\xff\xfe\"", b"{\"\xe9x\": 1}"] {
            let mut b = page
                .replacen("\"properties\"", "\"properties\": @, \"p\"", 1)
                .into_bytes();
            let at = b.iter().position(|&c| c == b'@').unwrap();
            b.splice(at..=at, bad.iter().copied());
            broken.push(b);
        }
        for b in broken {
            std::fs::write(&file, &b).unwrap();
            let got = collect(file.clone(), sub);
            let want = read_by_serde(&file, sub);
            assert!(
                same(&got, &want),
                "{}\n{got:?}\n{want:?}",
                String::from_utf8_lossy(&b)
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn json_lines_are_streamed_and_a_bad_line_is_named() {
        let sub = "00000000-0000-0000-0000-000000000001";
        let other = "00000000-0000-0000-0000-000000000002";
        let dir = std::env::temp_dir().join(format!("scanledger-fixture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenant.jsonl");
        let doc = |s: &str, n: u32| {
            format!(
                r#"{{"id": "/subscriptions/{s}/resourceGroups/rg/providers/Microsoft.Web/sites/a{n}", "type": "Microsoft.Web/sites"}}"#
            )
        };
        std::fs::write(
            &file,
            format!(
                "{}\n\n{}\n{}\nnot json\n{}\n",
                doc(sub, 1),
                doc(other, 2),
                doc(sub, 3),
                doc(sub, 4)
            ),
        )
        .unwrap();
        let items = collect(file.clone(), sub);
        // Two resources of the subscription (the other's is filtered), then the bad line
        // (a scan stops at the first error).
        assert!(items.len() >= 3, "{items:?}");
        assert!(items[0].as_ref().unwrap()["id"]
            .as_str()
            .unwrap()
            .ends_with("/a1"));
        assert!(items[1].as_ref().unwrap()["id"]
            .as_str()
            .unwrap()
            .ends_with("/a3"));
        let err = items[2].as_ref().unwrap_err();
        assert_eq!(err.code, FailureCode::InvalidInventory);
        assert!(err.detail.contains("line 5"), "{}", err.detail);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Lines end in "\n" or "\r\n", blank lines (any whitespace) are skipped, and a bad
    /// line's error is serde's on the line as written (its column counts leading spaces);
    /// bytes that are not UTF-8 fail the read, as the async line reader made them.
    #[test]
    fn json_lines_keep_their_endings_blanks_and_error_positions() {
        let sub = "00000000-0000-0000-0000-000000000001";
        let dir = std::env::temp_dir().join(format!("scanledger-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenant.jsonl");
        let doc = format!(r#"{{"id": "/subscriptions/{sub}/x/a", "type": "T/t"}}"#);
        let bad = "   {\"id\": tru}";
        std::fs::write(
            &file,
            format!("{doc}\r\n \t\u{a0}\r\n\n{doc}\n{bad}\r\n{doc}"),
        )
        .unwrap();
        let items = collect(file.clone(), sub);
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(items[0].is_ok() && items[1].is_ok());
        let err = items[2].as_ref().unwrap_err();
        let want = serde_json::from_str::<Resource>(bad).unwrap_err();
        assert_eq!(err.code, FailureCode::InvalidInventory);
        assert_eq!(err.detail, format!("{} line 5: {want}", file.display()));
        std::fs::write(&file, [doc.as_bytes(), b"\n\xff\n"].concat()).unwrap();
        let items = collect(file, sub);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].as_ref().unwrap_err().code,
            FailureCode::SourceUnavailable
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn streamed(text: &str) -> (Vec<Resource>, Result<(), StreamError>) {
        let mut out = Vec::new();
        let result = stream_document(text.as_bytes(), &mut |r| {
            out.push(r);
            true
        });
        (out, result)
    }

    #[test]
    fn documents_are_streamed_in_every_shape() {
        let (items, r) = streamed(r#"[{"id": "a"}, {"id": "b"}]"#);
        assert!(r.is_ok());
        assert_eq!(
            items,
            vec![
                serde_json::json!({"id": "a"}),
                serde_json::json!({"id": "b"})
            ]
        );
        // A list page: keys around `value` (nextLink) are ignored.
        let (items, r) = streamed(r#"{"nextLink": null, "value": [{"id": "a"}], "x": {"y": [1]}}"#);
        assert!(r.is_ok());
        assert_eq!(items, vec![serde_json::json!({"id": "a"})]);
        let (items, r) = streamed(r#"{"id": "a", "properties": {"value": 1}}"#);
        assert!(r.is_ok());
        assert_eq!(
            items,
            vec![serde_json::json!({"id": "a", "properties": {"value": 1}})]
        );
        let (items, r) = streamed(r#"{"value": []}"#);
        assert!(r.is_ok() && items.is_empty());
        assert!(matches!(
            streamed(r#"{"value": 3}"#).1,
            Err(StreamError::ValueNotArray)
        ));
        assert!(matches!(
            streamed(r#"{"value": {"a": 1}}"#).1,
            Err(StreamError::ValueNotArray)
        ));
        assert!(matches!(streamed("42").1, Err(StreamError::NotADocument)));
        assert!(matches!(
            streamed(r#"[{"id": "a"}"#).1,
            Err(StreamError::Json(_))
        ));
        assert!(matches!(
            streamed(r#"[{"id": "a"}] [1]"#).1,
            Err(StreamError::Json(_))
        ));
        // A consumer that stops gets no more elements.
        let mut seen = 0;
        let r = stream_document(&b"[1, 2, 3]"[..], &mut |_| {
            seen += 1;
            false
        });
        assert!(matches!(r, Err(StreamError::Stopped)));
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_list_page_file_is_filtered_by_subscription() {
        let sub = "00000000-0000-0000-0000-000000000001";
        let dir = std::env::temp_dir().join(format!("scanledger-page-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("page.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"value": [{{"id": "/subscriptions/{sub}/x/a", "type": "T/t"}}, {{"id": "/subscriptions/other/x/b", "type": "T/t"}}, {{"id": "/SUBSCRIPTIONS/{sub}/x/c", "type": "T/t"}}], "nextLink": null}}"#
            ),
        )
        .unwrap();
        let items = listed(file.clone(), sub);
        let ids: Vec<&str> = items
            .iter()
            .map(|r| r.as_ref().unwrap().id().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids[0].ends_with("/a") && ids[1].ends_with("/c"));
        // Cut as texts, for the evaluation threads to parse (serde reads only what
        // cutting cannot): a page, and the same resources as JSON lines.
        assert!(items.iter().all(|r| matches!(r, Ok(Listed::Text(_)))));
        let lines = dir.join("tenant.jsonl");
        let page: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let text: Vec<String> = page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        std::fs::write(&lines, text.join("\n")).unwrap();
        let items = listed(lines, sub);
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|r| matches!(r, Ok(Listed::Text(_)))));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_fixture_is_a_retryable_source_failure() {
        let items = collect(
            PathBuf::from("/nonexistent/scanledger/tenant"),
            "00000000-0000-0000-0000-000000000001",
        );
        assert_eq!(items.len(), 1);
        let err = items[0].as_ref().unwrap_err();
        assert_eq!(err.code, FailureCode::SourceUnavailable);
        assert!(err.code.retryable());
    }
}
