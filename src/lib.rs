//! scanledger: asynchronous cloud security posture scans, every step kept as an
//! immutable fact in PostgreSQL.

pub mod api;
pub mod backfill;
pub mod cli;
pub mod domain;
pub mod ledger;
pub mod metrics;
pub mod pg;
pub mod projection;
pub mod scanner;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod worker;

/// Use `ring` for TLS (reqwest is built without a default provider, to avoid a second
/// crypto library). Idempotent; call before building an HTTP client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
