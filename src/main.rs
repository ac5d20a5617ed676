use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    scanledger::telemetry::init();
    scanledger::install_crypto_provider();
    let cli = scanledger::cli::Cli::parse();
    match scanledger::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
