//! Command-line interface: flags ([`flags`]), the long-running processes they wire
//! ([`serve`]), the operator's one-shot commands ([`commands`]) and the local ones that
//! need no service ([`local`]: scan, rules, demo).

mod audit;
mod commands;
mod flags;
mod local;
mod serve;

use crate::ledger::schema;

pub use flags::*;
pub use local::DEMO_SUBSCRIPTION;
pub use serve::{create_database, Db, LOCAL_DATABASE};

impl Cli {
    /// Log filter when `RUST_LOG` is unset: services log `info`; the commands a person
    /// watches (`demo`, `scan`, `rules`) only warnings, so their output stays readable.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Demo(_) | Command::Scan(_) | Command::Rules(_) => "warn,sqlx=warn",
            _ => "info,sqlx=warn",
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    // Commands that need no database.
    match &cli.command {
        Command::Scan(args) => return local::scan(args).await,
        Command::Audit(AuditCommand::Keygen { output }) => {
            return audit::keygen(output).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify {
            bundle: Some(bundle),
            public_keys,
        }) => return audit::verify_bundle(bundle, public_keys),
        Command::Rules(cmd) => return local::rules(cmd),
        _ => {}
    }
    let db = cli.db.open().await?;
    // Projection commands inspect or repair a projection the start-up check refuses.
    let projection_cmd = matches!(cli.command, Command::Projections(_));
    // A projection the start-up check refuses is rebuilt when the operator asked for it
    // (--rebuild-projections); projection commands run anyway, to inspect or repair it.
    let mut rebuilt: Vec<String> = Vec::new();
    loop {
        match schema::migrate(&db.database).await {
            Ok(()) => break,
            Err(e)
                if e.projection_to_rebuild().is_some()
                    && (projection_cmd || cli.db.rebuild_projections) =>
            {
                let name = e.projection_to_rebuild().unwrap_or_default().to_string();
                if projection_cmd {
                    break;
                }
                if rebuilt.contains(&name) {
                    anyhow::bail!(
                        "projection {name} still fails the start-up check after a rebuild"
                    );
                }
                tracing::warn!(projection = %name, "rebuilding the projection before serving (--rebuild-projections)");
                commands::rebuild(&db, &name).await?;
                rebuilt.push(name);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("migrating the database")),
        }
    }
    let result = match &cli.command {
        Command::Migrate => {
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::Serve(args) => {
            serve::serve(&db, &cli.db, Some(&args.api), Some(&args.worker)).await
        }
        Command::Api(args) => serve::serve(&db, &cli.db, Some(args), None).await,
        Command::Worker(args) => serve::serve(&db, &cli.db, None, Some(args)).await,
        Command::Tokens(cmd) => commands::tokens(&db, cmd).await,
        Command::Projections(cmd) => commands::projections(&db, cmd).await,
        Command::Backfill(cmd) => commands::backfill(&db, cmd).await,
        Command::Demo(args) => local::demo(&db, &cli.db, args).await,
        Command::Audit(cmd) => audit::run(&db, cmd).await,
        Command::Scan(_) | Command::Rules(_) => unreachable!("dispatched above"),
    };
    drop(db);
    result.map(|()| std::process::ExitCode::SUCCESS)
}
