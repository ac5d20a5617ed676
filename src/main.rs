use clap::Parser;
use scanledger::telemetry::LogFormat;

// Rule evaluation allocates and frees small values at a high rate on every core;
// mimalloc keeps that fast and returns memory instead of fragmenting per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    scanledger::tune_allocator();
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
