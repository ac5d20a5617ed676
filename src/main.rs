use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = scanledger::cli::Cli::parse();
    scanledger::telemetry::init_with_default(cli.default_log_filter());
    scanledger::install_crypto_provider();
    match scanledger::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
