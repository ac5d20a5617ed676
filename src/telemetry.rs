//! Logging setup: `RUST_LOG` filters (default `info`), output to stderr, as text for
//! people or as JSON lines for log pipelines (`--log-format json`).

use tracing_subscriber::EnvFilter;

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields
    /// flattened, and `spans`, the enclosing spans with their fields (`worker_id`,
    /// `scan_id`, `request_id`).
    Json,
}

pub fn init() {
    init_with_default("info,sqlx=warn");
}

/// `RUST_LOG` wins; otherwise `default` (the interactive commands, `demo` and `scan`,
/// default to warnings so their own output stays readable).
pub fn init_with_default(default: &str) {
    init_with(default, LogFormat::Text);
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// A message for the person running a command (a warning, why the exit status is what
/// it is): a plain stderr line, or with `--log-format json` a log record, so that every
/// stderr line stays one JSON object.
pub fn notice(message: &str) {
    match FORMAT.get() {
        Some(LogFormat::Json) => tracing::warn!("{message}"),
        _ => eprintln!("{message}"),
    }
}

pub fn init_with(default: &str, format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // The span list carries every enclosing span's fields; the current span
            // alone would repeat its last entry.
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}
