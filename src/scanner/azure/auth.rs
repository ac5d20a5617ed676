//! Credentials through azure_identity, all sending through our HTTP client (so the
//! extra CA, proxy settings and timeouts apply to token calls too), and the
//! classification of token errors without their messages (Entra's
//! `error_description` quotes the request and must not reach a scan error).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_core::http::headers::HeaderName;
use azure_core::http::{
    AsyncRawResponse, ClientOptions, HttpClient, Request, RetryOptions, Transport,
};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::CredentialKind;
use crate::scanner::SourceSpecError;

/// Everything a credential may need, resolved from flags and environment.
pub struct CredentialConfig {
    pub kind: CredentialKind,
    pub authority_host: String,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub federated_token_file: Option<PathBuf>,
}

impl CredentialConfig {
    /// `auto`: a client secret when one is set, else a federated token file (workload
    /// identity), else the managed identity. The Azure CLI is never picked silently: a
    /// service must not borrow whoever last ran `az login`.
    pub fn resolved_kind(&self) -> CredentialKind {
        match self.kind {
            CredentialKind::Auto if self.client_secret.is_some() => CredentialKind::ClientSecret,
            CredentialKind::Auto if self.federated_token_file.is_some() => {
                CredentialKind::WorkloadIdentity
            }
            CredentialKind::Auto => CredentialKind::ManagedIdentity,
            k => k,
        }
    }
}

fn missing(var: &'static str, kind: &'static str) -> SourceSpecError {
    let hint = match var {
        "AZURE_TENANT_ID" => " (or --azure-tenant-id)",
        "AZURE_CLIENT_ID" => " (or --azure-client-id)",
        "AZURE_FEDERATED_TOKEN_FILE" => " (or --azure-federated-token-file)",
        _ => " (environment only)",
    };
    SourceSpecError::AzureMissingSetting { kind, var, hint }
}

fn required<'a>(
    value: &'a Option<String>,
    var: &'static str,
    kind: &'static str,
) -> Result<&'a str, SourceSpecError> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| missing(var, kind))
}

/// The status and request id of the last failed token call, as the transport saw it.
///
/// azure_identity 1.0 parses Entra's error body into a borrowed `&str`, which fails on
/// the `\r\n` escapes Entra puts in `error_description`; the status is then lost and a
/// refused secret would look like a transient error. The transport remembers it.
#[derive(Clone, Debug, Default)]
pub struct TokenProbe(Arc<Mutex<Option<Refusal>>>);

/// A refused token call: status and `x-ms-request-id`.
type Refusal = (u16, Option<String>);

impl TokenProbe {
    fn take(&self) -> Option<Refusal> {
        self.0.lock().expect("token probe").take()
    }
}

/// Our reqwest client as azure_core's transport, noting failed answers in a [`TokenProbe`].
#[derive(Debug)]
struct ProbedTransport {
    client: reqwest::Client,
    probe: TokenProbe,
}

#[async_trait::async_trait]
impl HttpClient for ProbedTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let res = self.client.execute_request(request).await?;
        let status = u16::from(res.status());
        let seen = (!(200..300).contains(&status)).then(|| {
            let id = res
                .headers()
                .get_optional_str(&HeaderName::from_static("x-ms-request-id"))
                .map(safe_id);
            (status, id)
        });
        *self.probe.0.lock().expect("token probe") = seen;
        Ok(res)
    }
}

fn safe_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// A credential and the probe its transport fills.
pub struct Credential {
    pub credential: Arc<dyn TokenCredential>,
    pub probe: TokenProbe,
}

/// Build the credential; `http` becomes its transport.
pub fn credential(
    config: &CredentialConfig,
    http: reqwest::Client,
) -> Result<Credential, SourceSpecError> {
    let probe = TokenProbe::default();
    let transport = ProbedTransport {
        client: http,
        probe: probe.clone(),
    };
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = config.authority_host.trim_end_matches('/').to_owned();
    let client_options = ClientOptions {
        transport: Some(Transport::new(Arc::new(transport))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
        // Our retry loop retries token calls too, against the same per-scan budget.
        retry: RetryOptions::none(),
        ..ClientOptions::default()
    };
    let setup = |e: azure_core::Error| SourceSpecError::AzureSetup(e.to_string());
    let kind = config.resolved_kind();
    let credential: Arc<dyn TokenCredential> = match kind {
        CredentialKind::ClientSecret => {
            let name = "client-secret";
            let tenant = required(&config.tenant_id, "AZURE_TENANT_ID", name)?;
            let client = required(&config.client_id, "AZURE_CLIENT_ID", name)?;
            let secret = config
                .client_secret
                .clone()
                .filter(|s| !s.secret().is_empty())
                .ok_or_else(|| missing("AZURE_CLIENT_SECRET", name))?;
            ClientSecretCredential::new(
                tenant,
                client.to_owned(),
                secret,
                Some(ClientSecretCredentialOptions { client_options }),
            )
            .map_err(setup)?
        }
        CredentialKind::WorkloadIdentity => {
            let name = "workload-identity";
            let tenant = required(&config.tenant_id, "AZURE_TENANT_ID", name)?;
            let client = required(&config.client_id, "AZURE_CLIENT_ID", name)?;
            let file = config
                .federated_token_file
                .clone()
                .ok_or_else(|| missing("AZURE_FEDERATED_TOKEN_FILE", name))?;
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options },
                tenant_id: Some(tenant.to_owned()),
                client_id: Some(client.to_owned()),
                token_file_path: Some(file),
            };
            WorkloadIdentityCredential::new(Some(options)).map_err(setup)?
        }
        CredentialKind::ManagedIdentity => {
            // A user-assigned identity is named by its client id; none means system-assigned.
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: config
                    .client_id
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .map(UserAssignedId::ClientId),
                client_options,
            };
            ManagedIdentityCredential::new(Some(options)).map_err(setup)?
        }
        CredentialKind::AzureCli => {
            let options = AzureCliCredentialOptions {
                tenant_id: config.tenant_id.clone().filter(|t| !t.trim().is_empty()),
                ..AzureCliCredentialOptions::default()
            };
            AzureCliCredential::new(Some(options)).map_err(setup)?
        }
        CredentialKind::Auto => unreachable!("resolved above"),
    };
    tracing::info!(credential = kind.as_str(), "azure credential ready");
    Ok(Credential { credential, probe })
}

/// A failed token call, reduced to what may be logged and decided on.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenFailure {
    /// The identity provider refused us: retrying will not help.
    Rejected(String),
    /// The provider or the network failed; `status` when it answered.
    Retryable { status: Option<u16>, detail: String },
}

fn by_status(status: u16, detail: String) -> TokenFailure {
    if status == 429 || status >= 500 {
        TokenFailure::Retryable {
            status: Some(status),
            detail,
        }
    } else {
        TokenFailure::Rejected(detail)
    }
}

/// Classify a token error by its kind and status only: the messages azure_identity
/// builds quote Entra's `error_description`, which is response body text.
pub fn classify(err: &azure_core::Error, probe: &TokenProbe) -> TokenFailure {
    let seen = probe.take();
    let mut kinds = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(az) = e.downcast_ref::<azure_core::Error>() {
            kinds.push(az.kind());
        }
        cur = e.source();
    }
    for kind in &kinds {
        if let ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } = kind
        {
            let status = u16::from(*status);
            let mut detail = format!("token request: HTTP {status}");
            // Entra's numeric AADSTS codes, e.g. 7000215 (invalid secret).
            if let Some(codes) = error_code
                .as_deref()
                .filter(|c| c.len() <= 80 && c.bytes().all(|b| b.is_ascii_digit() || b == b','))
            {
                detail.push_str(&format!(", AADSTS {codes}"));
            }
            if let Some(id) = raw_response.as_ref().and_then(|r| {
                r.headers()
                    .get_optional_str(&HeaderName::from_static("x-ms-request-id"))
                    .map(safe_id)
            }) {
                detail.push_str(&format!(", x-ms-request-id {id}"));
            }
            return by_status(status, detail);
        }
    }
    // No status in the error, but the transport saw a refusal: trust the status.
    if let Some((status, id)) = seen {
        let mut detail = format!("token request: HTTP {status} (unreadable error body)");
        if let Some(id) = id {
            detail.push_str(&format!(", x-ms-request-id {id}"));
        }
        return by_status(status, detail);
    }
    if kinds
        .iter()
        .any(|k| matches!(k, ErrorKind::Connection | ErrorKind::Io))
    {
        return TokenFailure::Retryable {
            status: None,
            detail: "token request: could not reach the identity endpoint".into(),
        };
    }
    if kinds.iter().any(|k| matches!(k, ErrorKind::DataConversion)) {
        // An unreadable answer (a proxy's error page, a cut body) is likely transient.
        return TokenFailure::Retryable {
            status: None,
            detail: "token request: unreadable answer".into(),
        };
    }
    // No HTTP answer at all: e.g. the Azure CLI is not logged in, or the federated
    // token file is missing. Its message names the cause and holds no token.
    TokenFailure::Rejected(format!("credential unavailable: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_secret_then_workload_then_managed_identity() {
        let mut c = CredentialConfig {
            kind: CredentialKind::Auto,
            authority_host: "https://login.microsoftonline.com".into(),
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            client_secret: None,
            federated_token_file: None,
        };
        assert_eq!(c.resolved_kind(), CredentialKind::ManagedIdentity);
        c.federated_token_file = Some("/var/run/token".into());
        assert_eq!(c.resolved_kind(), CredentialKind::WorkloadIdentity);
        c.client_secret = Some(Secret::new("s"));
        assert_eq!(c.resolved_kind(), CredentialKind::ClientSecret);
        c.kind = CredentialKind::AzureCli;
        assert_eq!(c.resolved_kind(), CredentialKind::AzureCli);
    }

    #[test]
    fn missing_settings_name_the_variable() {
        super::super::install_crypto_provider();
        let c = CredentialConfig {
            kind: CredentialKind::ClientSecret,
            authority_host: "https://login.microsoftonline.com".into(),
            tenant_id: None,
            client_id: Some("c".into()),
            client_secret: Some(Secret::new("s")),
            federated_token_file: None,
        };
        let e = credential(&c, reqwest::Client::new()).err().unwrap();
        assert!(e.to_string().contains("AZURE_TENANT_ID"), "{e}");
        let c = CredentialConfig {
            tenant_id: Some("t".into()),
            client_secret: None,
            ..c
        };
        let e = credential(&c, reqwest::Client::new()).err().unwrap();
        assert!(e.to_string().contains("AZURE_CLIENT_SECRET"), "{e}");
    }

    #[test]
    fn classifies_without_messages() {
        let e = azure_core::Error::with_message(ErrorKind::Io, "reset by peer");
        let probe = TokenProbe::default();
        assert!(matches!(
            classify(&e, &probe),
            TokenFailure::Retryable { status: None, .. }
        ));
        let inner = azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: azure_core::http::StatusCode::Unauthorized,
                error_code: Some("7000215".into()),
                raw_response: None,
            },
            "AADSTS7000215: Invalid client secret provided. secret-marker",
        );
        let outer = azure_core::Error::with_error(
            ErrorKind::Credential,
            inner,
            "ClientSecretCredential authentication failed. secret-marker",
        );
        match classify(&outer, &probe) {
            TokenFailure::Rejected(d) => {
                assert!(d.contains("401") && d.contains("7000215"), "{d}");
                assert!(!d.contains("secret-marker"), "{d}");
            }
            other => panic!("{other:?}"),
        }
        // A body azure_identity could not parse: the probe's status decides.
        let e = azure_core::Error::with_message(
            ErrorKind::DataConversion,
            "expected a borrowed string",
        );
        *probe.0.lock().unwrap() = Some((401, Some("rid-1".into())));
        match classify(&e, &probe) {
            TokenFailure::Rejected(d) => assert!(d.contains("401") && d.contains("rid-1"), "{d}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&e, &probe),
            TokenFailure::Retryable { status: None, .. }
        ));
    }
}
