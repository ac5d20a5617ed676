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

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): how long freed memory is kept
/// before it is returned to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// For a process whose global allocator is mimalloc: return freed memory after 50 ms.
/// mimalloc v3 keeps freed pages for 1 s; a scan frees a piece's values on one thread
/// while another allocates, so the peak held both: the 100k tenant peaked at 263-315 MB,
/// and 221-235 MB at 50 ms, ~1 % slower (docs/performance.md). An operator's
/// MIMALLOC_PURGE_DELAY still wins.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 50) };
    }
}

/// Use `ring` for TLS (reqwest is built without a default provider, to avoid a second
/// crypto library). Idempotent; call before building an HTTP client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
