//! The fixture source: ARM-shaped JSON documents on disk. A `.json` file holds one
//! resource, an array of resources, or an ARM list page (`{"value": [...]}`); a `.jsonl`
//! file holds one resource per line and is streamed line by line (large synthetic
//! tenants). A folder is read file by file in name order, so memory holds one file's
//! documents, or one line, at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};

use super::{InventorySource, Needs, Resource};
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

fn parse(file: &Path, bytes: &[u8]) -> Result<Vec<Resource>, ScanError> {
    let invalid = |detail: String| ScanError::new(FailureCode::InvalidInventory, detail);
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    match doc {
        serde_json::Value::Array(items) => Ok(items),
        serde_json::Value::Object(mut obj) => match obj.remove("value") {
            Some(serde_json::Value::Array(items)) => Ok(items),
            Some(_) => Err(invalid(format!(
                "{}: `value` is not an array",
                file.display()
            ))),
            None => Ok(vec![serde_json::Value::Object(obj)]),
        },
        _ => Err(invalid(format!(
            "{}: not a resource document",
            file.display()
        ))),
    }
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
                    let item = serde_json::from_str(&line).map_err(|e| {
                        ScanError::new(
                            FailureCode::InvalidInventory,
                            format!("{} line {n}: {e}", file.display()),
                        )
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
    fn resources(
        &self,
        subscription: &SubscriptionId,
        _needs: &Needs,
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
                stream::once(async move {
                    let bytes = tokio::fs::read(&file).await.map_err(|e| {
                        ScanError::new(
                            FailureCode::SourceUnavailable,
                            format!("{}: {e}", file.display()),
                        )
                    })?;
                    parse(&file, &bytes)
                })
                .flat_map(|doc| match doc {
                    Ok(items) => stream::iter(items.into_iter().map(Ok)).boxed(),
                    Err(e) => stream::once(async move { Err(e) }).boxed(),
                })
                .boxed()
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
        rt.block_on(source.resources(&sub, &Needs::default()).collect())
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
