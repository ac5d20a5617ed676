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

/// For a process whose global allocator is mimalloc: no transparent huge pages, and
/// freed memory returned to the OS after 200 ms (mimalloc v3 keeps it 1 s).
///
/// mimalloc asks the kernel for huge pages on its arenas (`madvise`), so a page freed
/// and purged inside a 2 MiB huge page cost a 2 MiB fault and zeroing when reused: a
/// scan frees a piece's values on one thread while another allocates, and the 100k
/// tenant peaked at 263-315 MB with 1 s, 233-254 MB with 50 ms at ~9 % of its CPU in
/// page faults. Without huge pages, 200 ms: 207-237 MB and faster than either
/// (docs/performance.md). An operator's MIMALLOC_ALLOW_THP / MIMALLOC_PURGE_DELAY win.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 200) };
    }
    // mimalloc reads MIMALLOC_ALLOW_THP when it starts, before `main`: what it does for
    // 0 is this call, made here instead (it applies to the mappings already made too).
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with integer arguments; only this process's THP flag changes.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

/// Use `ring` for TLS (reqwest is built without a default provider, to avoid a second
/// crypto library). Idempotent; call before building an HTTP client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
