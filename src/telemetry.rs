//! Logging setup: `RUST_LOG` filters (default `info`), output to stderr.

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info,sqlx=warn");
}

/// `RUST_LOG` wins; otherwise `default` (the interactive commands, `demo` and `scan`,
/// default to warnings so their own output stays readable).
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
