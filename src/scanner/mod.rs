//! The scan itself. For now it enumerates an inventory (ARM-shaped JSON) and reports
//! what it saw; posture rules land on top of the same stream of resources.

pub mod fixture;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::ledger::{FailureCode, Phase, ScanSummary, SubscriptionId};
use crate::worker::{ProgressReporter, ScanError, ScanJob, ScanReport, ScanTarget};

/// One ARM resource, exactly as the REST API returns it.
pub type Resource = serde_json::Value;

/// Where resources come from.
pub trait InventorySource: Send + Sync + 'static {
    /// Stream the resources of one subscription; memory stays flat as the tenant grows.
    fn resources(
        &self,
        subscription: &SubscriptionId,
    ) -> BoxStream<'static, Result<Resource, ScanError>>;
}

/// A `--source` value.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// `fixture:PATH[?delay_ms=N]`: ARM JSON documents on disk; the optional delay per
    /// resource imitates a slow tenant (demos, crash tests).
    Fixture { path: PathBuf, delay: Duration },
    /// `azure`: the Azure Resource Manager source (not built yet).
    Azure,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceSpecError {
    #[error("unknown source {0:?}: expected fixture:PATH or azure")]
    Unknown(String),
    #[error("bad fixture option {0:?}: expected delay_ms=N")]
    BadOption(String),
    #[error("the azure source is not available in this build yet; use --source fixture:PATH")]
    AzureNotBuilt,
}

impl FromStr for SourceSpec {
    type Err = SourceSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "azure" {
            return Ok(Self::Azure);
        }
        let Some(rest) = s.strip_prefix("fixture:") else {
            return Err(SourceSpecError::Unknown(s.into()));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(SourceSpecError::Unknown(s.into()));
        }
        let mut delay = Duration::ZERO;
        for opt in query.split('&').filter(|o| !o.is_empty()) {
            let ms = opt
                .strip_prefix("delay_ms=")
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| SourceSpecError::BadOption(opt.into()))?;
            delay = Duration::from_millis(ms);
        }
        Ok(Self::Fixture {
            path: path.into(),
            delay,
        })
    }
}

impl SourceSpec {
    pub fn open(&self) -> Result<Arc<dyn InventorySource>, SourceSpecError> {
        match self {
            Self::Fixture { path, delay } => {
                Ok(Arc::new(fixture::FixtureSource::new(path.clone(), *delay)))
            }
            Self::Azure => Err(SourceSpecError::AzureNotBuilt),
        }
    }
}

/// The production scan job: list the inventory and summarize it.
pub struct InventoryScan {
    source: Arc<dyn InventorySource>,
}

impl InventoryScan {
    pub fn new(source: Arc<dyn InventorySource>) -> Self {
        Self { source }
    }
}

impl ScanJob for InventoryScan {
    fn run(
        &self,
        target: ScanTarget,
        progress: ProgressReporter,
    ) -> BoxFuture<'static, Result<ScanReport, ScanError>> {
        let mut resources = self.source.resources(&target.subscription_id);
        Box::pin(async move {
            progress.phase(Phase::Listing);
            let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
            let mut seen = 0u64;
            while let Some(resource) = resources.next().await {
                let resource = resource?;
                let kind = resource
                    .get("type")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| {
                        ScanError::new(FailureCode::InvalidInventory, "resource without a type")
                    })?
                    .to_ascii_lowercase();
                *by_type.entry(kind).or_default() += 1;
                seen += 1;
                progress.resources_seen(1);
            }
            Ok(ScanReport {
                summary: ScanSummary {
                    resources_seen: seen,
                    resources_by_type: by_type,
                    findings: 0,
                    findings_by_severity: BTreeMap::new(),
                },
                findings: Vec::new(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_specs() {
        assert_eq!(
            "fixture:demo/tenant".parse::<SourceSpec>().unwrap(),
            SourceSpec::Fixture {
                path: "demo/tenant".into(),
                delay: Duration::ZERO
            }
        );
        assert_eq!(
            "fixture:/x?delay_ms=250".parse::<SourceSpec>().unwrap(),
            SourceSpec::Fixture {
                path: "/x".into(),
                delay: Duration::from_millis(250)
            }
        );
        assert_eq!("azure".parse::<SourceSpec>().unwrap(), SourceSpec::Azure);
        assert!("fixture:".parse::<SourceSpec>().is_err());
        assert!("fixture:/x?speed=1".parse::<SourceSpec>().is_err());
        assert!("s3://bucket".parse::<SourceSpec>().is_err());
    }
}
