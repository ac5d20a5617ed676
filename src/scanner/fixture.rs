//! The fixture source: ARM-shaped JSON documents on disk. A `.json` file holds one
//! resource, an array of resources, or an ARM list page (`{"value": [...]}`); a `.jsonl`
//! file holds one resource per line and is streamed line by line (large synthetic
//! tenants). A folder is read file by file in name order, so memory holds one file's
//! documents, or one line, at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};

use super::{Inventory, InventorySource, Needs, Resource};

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

/// A `.json` file, streamed by a blocking thread through a bounded channel.
fn document(file: PathBuf) -> BoxStream<'static, Result<Resource, ScanError>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Resource, ScanError>>(1024);
    tokio::task::spawn_blocking(move || {
        let opened = std::fs::File::open(&file).map_err(|e| {
            ScanError::new(
                FailureCode::SourceUnavailable,
                format!("{}: {e}", file.display()),
            )
        });
        let f = match opened {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let reader = std::io::BufReader::with_capacity(1 << 16, f);
        let mut refused = false;
        let result = stream_document(reader, &mut |r| {
            if let Some(why) = not_a_resource(&r) {
                refused = true;
                let _ = tx.blocking_send(Err(ScanError::new(
                    FailureCode::InvalidInventory,
                    format!("{}: {why}", file.display()),
                )));
                return false;
            }
            tx.blocking_send(Ok(r)).is_ok()
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

/// One resource per line; blank lines are skipped.
fn lines(file: PathBuf) -> BoxStream<'static, Result<Resource, ScanError>> {
    use tokio::io::AsyncBufReadExt;
    let unavailable = {
        let file = file.clone();
        move |e: std::io::Error| {
            ScanError::new(
                FailureCode::SourceUnavailable,
                format!("{}: {e}", file.display()),
            )
        }
    };
    stream::once(async move {
        let f = tokio::fs::File::open(&file).await.map_err(&unavailable)?;
        let reader = tokio::io::BufReader::with_capacity(1 << 16, f).lines();
        Ok::<_, ScanError>(stream::unfold(
            (reader, file, 0usize, unavailable),
            |(mut reader, file, n, unavailable)| async move {
                // usize::MAX marks a stream that already reported a read error.
                if n == usize::MAX {
                    return None;
                }
                let mut n = n;
                loop {
                    let line = match reader.next_line().await {
                        Ok(Some(line)) => line,
                        Ok(None) => return None,
                        Err(e) => {
                            let err = unavailable(e);
                            return Some((Err(err), (reader, file, usize::MAX, unavailable)));
                        }
                    };
                    n += 1;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let invalid = |detail: String| {
                        ScanError::new(
                            FailureCode::InvalidInventory,
                            format!("{} line {n}: {detail}", file.display()),
                        )
                    };
                    let item = serde_json::from_str::<Resource>(&line)
                        .map_err(|e| invalid(e.to_string()))
                        .and_then(|r| match not_a_resource(&r) {
                            Some(why) => Err(invalid(why)),
                            None => Ok(r),
                        });
                    return Some((item, (reader, file, n, unavailable)));
                }
            },
        ))
    })
    .flat_map(|r| match r {
        Ok(s) => s.boxed(),
        Err(e) => stream::once(async move { Err(e) }).boxed(),
    })
    .boxed()
}

/// Does this resource id belong to the subscription? ARM ids are case-insensitive.
fn in_subscription(resource: &Resource, prefix: &str) -> bool {
    resource
        .get("id")
        .and_then(|id| id.as_str())
        .is_some_and(|id| {
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
    ) -> BoxStream<'static, Result<Resource, ScanError>> {
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

    fn collect(path: PathBuf, sub: &str) -> Vec<Result<Resource, ScanError>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let source = FixtureSource::new(path, Duration::ZERO);
        let sub = SubscriptionId::parse(sub).unwrap();
        rt.block_on(source.list(&sub, &Needs::default()).resources.collect())
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
        let items = collect(file, sub);
        let ids: Vec<&str> = items
            .iter()
            .map(|r| r.as_ref().unwrap()["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids[0].ends_with("/a") && ids[1].ends_with("/c"));
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
