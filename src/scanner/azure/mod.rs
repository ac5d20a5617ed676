//! The Azure Resource Manager inventory source: Resource Graph for bulk listing, ARM
//! lists for subscription-scope settings Resource Graph lacks, and ARM GETs for the
//! related documents rules declare. See docs/azure.md.

mod arm;
mod auth;
pub mod estate;
mod graph;
pub mod http;

use crate::metrics::AzureMetrics;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::Url;

use super::inventory::Coverage;
use super::{Inventory, InventorySource, Listed, Needs, Resource, SourceSpecError};
use crate::domain::SubscriptionId;
use crate::worker::ScanError;

use auth::CredentialConfig;
pub use azure_core::credentials::Secret;
use http::RequestRetries;
use http::ScanCalls;

/// Which azure_identity credential signs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialKind {
    /// Client secret if AZURE_CLIENT_SECRET is set, else workload identity if
    /// AZURE_FEDERATED_TOKEN_FILE is set, else managed identity.
    #[default]
    Auto,
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ClientSecret => "client-secret",
            Self::WorkloadIdentity => "workload-identity",
            Self::ManagedIdentity => "managed-identity",
            Self::AzureCli => "azure-cli",
        }
    }
}

/// Azure connection settings (the CLI fills them from its `--azure-*` flags).
///
/// The client secret is never a flag (command lines are visible to other local users):
/// it comes from `AZURE_CLIENT_SECRET`, or from code that sets `client_secret`.
#[derive(Clone, Debug)]
pub struct AzureSettings {
    /// Azure Resource Manager endpoint (sovereign clouds: see docs/azure.md).
    pub arm_endpoint: String,
    /// Microsoft Entra authority host that issues tokens.
    pub authority_host: String,
    /// Credential to sign in with.
    pub credential: CredentialKind,
    /// Tenant (directory) id, for client-secret and workload-identity credentials.
    pub tenant_id: Option<String>,
    /// Application (client) id; for managed identity, selects a user-assigned identity.
    pub client_id: Option<String>,
    /// Read from AZURE_CLIENT_SECRET when the source opens; never a flag.
    pub client_secret: Option<Secret>,
    /// Kubernetes service account token file, for workload identity.
    pub federated_token_file: Option<PathBuf>,
    /// Extra trusted root certificates (PEM), e.g. a TLS-inspecting proxy's; token calls too.
    pub ca_file: Option<PathBuf>,
    /// Most ARM and Resource Graph calls in flight at once (per process).
    pub concurrency: usize,
    /// Timeout of one HTTP request, body included (e.g. 30s, 500ms).
    pub timeout: Duration,
    /// Retries of one request after its first try.
    pub max_retries: u32,
    /// Retries one scan may spend across all its requests.
    pub retry_budget: u32,
    /// First back-off step without Retry-After; doubles per retry (full jitter, 30s cap).
    pub backoff_base: Duration,
    /// Resource Graph rows per page (`$top`, at most 1000).
    pub page_size: u32,
    /// Where requests, throttling and retry waits are counted (default: nowhere).
    pub metrics: AzureMetrics,
}

impl Default for AzureSettings {
    /// The defaults of the `--azure-*` flags.
    fn default() -> Self {
        Self {
            arm_endpoint: "https://management.azure.com".into(),
            authority_host: "https://login.microsoftonline.com".into(),
            credential: CredentialKind::Auto,
            tenant_id: None,
            client_id: None,
            client_secret: None,
            federated_token_file: None,
            ca_file: None,
            concurrency: 8,
            timeout: Duration::from_secs(30),
            max_retries: 6,
            retry_budget: 100,
            backoff_base: Duration::from_millis(500),
            page_size: 1000,
            metrics: AzureMetrics::default(),
        }
    }
}

/// rustls needs one process-wide crypto provider; reqwest is built without one.
fn install_crypto_provider() {
    // Err means one is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn https_url(flag: &'static str, value: &str) -> Result<Url, SourceSpecError> {
    let bad = |reason: &str| SourceSpecError::AzureEndpoint {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad("must use https (tokens travel on it)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url)
}

fn http_client(args: &AzureSettings) -> Result<reqwest::Client, SourceSpecError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout.min(Duration::from_secs(10)))
        // ARM does not redirect; a redirect must not carry our token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("scanledger/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &args.ca_file {
        let ca_error = |reason: String| SourceSpecError::AzureCaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in the file".into()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| SourceSpecError::AzureSetup(format!("HTTP client: {e}")))
}

/// Open the Azure source: check the settings and build the credential (no network yet).
pub fn open(args: &AzureSettings) -> Result<Arc<dyn InventorySource>, SourceSpecError> {
    Ok(Arc::new(AzureSource::new(args)?))
}

/// The source: one HTTP client and credential, shared by every scan.
pub struct AzureSource {
    http: Arc<http::Http>,
    page_size: u32,
    concurrency: usize,
}

impl AzureSource {
    pub fn new(args: &AzureSettings) -> Result<Self, SourceSpecError> {
        let arm = https_url("--azure-arm-endpoint", &args.arm_endpoint)?;
        https_url("--azure-authority-host", &args.authority_host)?;
        let client = http_client(args)?;
        let secret = args.client_secret.clone().or_else(|| {
            std::env::var("AZURE_CLIENT_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Secret::new)
        });
        let config = CredentialConfig {
            kind: args.credential,
            authority_host: args.authority_host.trim().to_owned(),
            tenant_id: args.tenant_id.clone(),
            client_id: args.client_id.clone(),
            client_secret: secret,
            federated_token_file: args.federated_token_file.clone(),
        };
        let credential = auth::credential(&config, client.clone())?;
        let policy = RequestRetries {
            max_retries: args.max_retries,
            backoff_base: args.backoff_base,
            budget: args.retry_budget,
        };
        let concurrency = args.concurrency.max(1);
        Ok(Self {
            http: Arc::new(http::Http::new(
                client,
                credential,
                arm,
                concurrency,
                policy,
                args.metrics.clone(),
            )),
            page_size: args.page_size.clamp(1, 1000),
            concurrency,
        })
    }
}

impl InventorySource for AzureSource {
    fn list(&self, subscription: &SubscriptionId, needs: &Needs) -> Inventory {
        let coverage = Arc::new(Coverage::default());
        let resources = self.resources(subscription, needs, coverage.clone());
        Inventory {
            resources: resources.map(|r| r.map(Listed::Parsed)).boxed(),
            coverage,
        }
    }
}

/// How one scan's listing is laid out: what to emit, which children to list under
/// which parents, and which related documents to attach.
struct Plan {
    /// Lower-cased types a rule reads: only these are emitted.
    emit: BTreeSet<String>,
    /// Lower-cased parent type → child lists under it: (child type as the catalogue
    /// spells it, path segment, api-version).
    children: BTreeMap<String, Vec<(String, &'static str, &'static str)>>,
    /// Lower-cased type → related path → api-version.
    related: BTreeMap<String, Arc<BTreeMap<String, String>>>,
}

impl Plan {
    /// Types to list in bulk (Resource Graph or subscription lists), as spelled, and the
    /// plan for the rest: child types are listed under their parents, whose types are
    /// added (recursively) when no rule reads them.
    fn of(needs: &Needs) -> (BTreeSet<String>, Self) {
        let mut bulk = BTreeSet::new();
        let mut children: BTreeMap<String, Vec<(String, &'static str, &'static str)>> =
            BTreeMap::new();
        let mut pending: Vec<String> = needs.types.iter().cloned().collect();
        let mut seen = BTreeSet::new();
        while let Some(t) = pending.pop() {
            if !seen.insert(t.to_ascii_lowercase()) {
                continue;
            }
            match arm::child_list(&t) {
                Some((parent, segment, version)) => {
                    children
                        .entry(parent.to_ascii_lowercase())
                        .or_default()
                        .push((t.clone(), segment, version));
                    pending.push(parent);
                }
                None => {
                    bulk.insert(t);
                }
            }
        }
        let plan = Self {
            emit: needs.types.iter().map(|t| t.to_ascii_lowercase()).collect(),
            children,
            related: needs
                .related
                .iter()
                .map(|(t, paths)| (t.to_ascii_lowercase(), Arc::new(paths.clone())))
                .collect(),
        };
        (bulk, plan)
    }

    /// `kind` and every type listed beneath it.
    fn with_descendants(&self, kind: &str) -> Vec<String> {
        let mut out = vec![kind.to_ascii_lowercase()];
        let mut i = 0;
        while i < out.len() {
            if let Some(list) = self.children.get(&out[i]) {
                out.extend(list.iter().map(|(t, _, _)| t.to_ascii_lowercase()));
            }
            i += 1;
        }
        out
    }
}

/// One listed resource, with its related documents and the children listed under it,
/// depth first: what the stream yields for it. A child list that fails (after retries,
/// or refused) marks its type, and every type beneath it, as not listed.
fn expand(
    scan: Arc<ScanCalls>,
    plan: Arc<Plan>,
    coverage: Arc<Coverage>,
    mut resource: Resource,
) -> futures_util::future::BoxFuture<'static, Vec<Result<Resource, ScanError>>> {
    Box::pin(async move {
        let kind = resource
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let id = resource
            .get("id")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let mut listed: Vec<Resource> = Vec::new();
        for (child, segment, version) in plan.children.get(&kind).into_iter().flatten() {
            match arm::list_children(&scan, &id, segment, version).await {
                Ok(items) => {
                    for mut item in items {
                        // Lists usually name each item's type; make sure they do.
                        if let Some(obj) = item.as_object_mut() {
                            if !obj.get("type").is_some_and(|t| t.is_string()) {
                                obj.insert("type".into(), child.clone().into());
                            }
                        }
                        listed.push(item);
                    }
                }
                Err(f) if f.is_fatal() => {
                    return vec![Err(f.into_scan_error(&format!("{segment} of {id}")))];
                }
                Err(f) => {
                    let reason = match f.status() {
                        Some(status) => format!("listing {segment} of {id} failed: HTTP {status}"),
                        None => format!("listing {segment} of {id} failed"),
                    };
                    tracing::warn!(
                        subscription = %scan.subscription,
                        resource_id = %id,
                        child_type = %child,
                        status = f.status(),
                        error = %f.into_scan_error("child list").detail,
                        "child resources not listed; rules needing them report indeterminate"
                    );
                    for t in plan.with_descendants(child) {
                        coverage.unlisted(&t, reason.clone());
                    }
                }
            }
        }
        let mut out = Vec::new();
        if plan.emit.contains(&kind) {
            let paths = plan.related.get(&kind).cloned();
            match arm::attach_related(scan.clone(), resource, paths).await {
                Ok(r) => resource = r,
                Err(e) => return vec![Err(e)],
            }
            out.push(Ok(resource));
        }
        for child in listed {
            out.extend(expand(scan.clone(), plan.clone(), coverage.clone(), child).await);
        }
        out
    })
}

impl AzureSource {
    fn resources(
        &self,
        subscription: &SubscriptionId,
        needs: &Needs,
        coverage: Arc<Coverage>,
    ) -> BoxStream<'static, Result<Resource, ScanError>> {
        let scan = Arc::new(http::ScanCalls::new(
            self.http.clone(),
            subscription.clone(),
        ));
        let (bulk, plan) = Plan::of(needs);
        let (listed, graphed): (Vec<&String>, Vec<&String>) = bulk
            .iter()
            .partition(|t| arm::subscription_list(t).is_some());

        let mut parts: Vec<BoxStream<'static, Result<Resource, ScanError>>> = Vec::new();
        if !graphed.is_empty() {
            let types = graphed.into_iter().cloned().collect();
            parts.push(graph::resources(scan.clone(), types, self.page_size));
        }
        for t in listed {
            let (path, version) = arm::subscription_list(t).expect("partitioned");
            let url = self
                .http
                .url(&format!("/subscriptions/{subscription}/{path}"), version);
            parts.push(arm::list(scan.clone(), url));
        }

        let plan = Arc::new(plan);
        // `buffered` expands several resources at once (related documents, child
        // lists) and still yields them in listing order; the HTTP permits bound the
        // calls themselves.
        stream::iter(parts)
            .flatten()
            .map(move |item| {
                let (scan, plan, coverage) = (scan.clone(), plan.clone(), coverage.clone());
                async move {
                    match item {
                        Ok(resource) => expand(scan, plan, coverage, resource).await,
                        Err(e) => vec![Err(e)],
                    }
                }
            })
            .buffered(self.concurrency)
            .flat_map(stream::iter)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https() {
        assert!(https_url(
            "--azure-arm-endpoint",
            "https://management.usgovcloudapi.net"
        )
        .is_ok());
        for bad in [
            "http://management.azure.com",
            "management.azure.com",
            "https://x/?a=1",
        ] {
            let e = https_url("--azure-arm-endpoint", bad).unwrap_err();
            assert!(e.to_string().contains("--azure-arm-endpoint"), "{e}");
        }
    }
}
