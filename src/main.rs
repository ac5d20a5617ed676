use clap::Parser;
use scanledger::telemetry::LogFormat;

// Rule evaluation allocates and frees small values at a high rate on every core;
// mimalloc keeps that fast and returns memory instead of fragmenting per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): how long freed memory is kept
/// before it is returned to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // mimalloc v3 keeps freed pages for 1 s before returning them; a scan frees a piece's
    // values on one thread while another allocates, so the peak held both: the 100k
    // tenant peaked at 263-315 MB, and 221-235 MB at 50 ms, ~1 % slower
    // (docs/performance.md). An operator's MIMALLOC_PURGE_DELAY still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 50) };
    }
    // regorus' parser builds and drops thousands of `anyhow` errors while it loads the
    // catalogue; under RUST_BACKTRACE=1 each captured a backtrace, which made every load
    // take 0.25 s more. Set before the runtime starts any thread. Panics still honour
    // RUST_BACKTRACE; an operator who wants library backtraces sets RUST_LIB_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(run())
}

async fn run() -> std::process::ExitCode {
    let cli = scanledger::cli::Cli::parse();
    let log_format = cli.log_format;
    scanledger::telemetry::init_with(cli.default_log_filter(), log_format);
    scanledger::install_crypto_provider();
    match scanledger::cli::run(cli).await {
        Ok(code) => code,
        // A flag value refused after parsing is a usage error, as clap's own are.
        Err(e) if e.downcast_ref::<scanledger::cli::UsageError>().is_some() => {
            eprintln!("error: {e:#}\n\nFor more information, try '--help'.");
            std::process::ExitCode::from(scanledger::cli::EXIT_USAGE)
        }
        Err(e) => {
            // Said once: as a log record for pipelines that read JSON lines, as a
            // plain line for a person.
            match log_format {
                LogFormat::Json => tracing::error!("{e:#}"),
                LogFormat::Text => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
