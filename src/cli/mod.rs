//! Command-line interface: flags ([`flags`]), the long-running processes they wire
//! ([`serve`]), the operator's one-shot commands ([`commands`]) and the local ones that
//! need no service ([`local`]: scan, rules, demo).

mod audit;
mod commands;
mod flags;
mod local;
mod serve;

use anyhow::Context;
use sqlx::Connection;

use crate::ledger::schema;
use crate::pg::{access, Database};

pub use flags::*;
pub use local::DEMO_SUBSCRIPTION;
pub use serve::{create_database, Db, LOCAL_DATABASE, LOCAL_RUNTIME_LOGIN};

impl Cli {
    /// Log filter when `RUST_LOG` is unset: services log `info`; the commands a person
    /// watches (`demo`, `scan`, `rules`) only warnings, so their output stays readable.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Demo { .. } | Command::Scan(_) | Command::Rules(_) => "warn,sqlx=warn",
            _ => "info,sqlx=warn",
        }
    }
}

/// A flag value the command refuses after parsing (exit status 2, like clap's own).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit status of `scan` when findings at or above `--fail-on` exist (as Prowler's).
pub const EXIT_FINDINGS: u8 = 3;
/// Exit status of a usage error (clap's).
pub const EXIT_USAGE: u8 = 2;

/// Context of a failed owner command (the usual cause: a runtime login in the URL).
const OWNER_HINT: &str = "migrate and projections connect as the ledger's owner: \
     --owner-url (SCANLEDGER_OWNER_URL), else DATABASE_URL";

pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    // Commands that need no database.
    match &cli.command {
        Command::Scan(args) => return local::scan(args).await,
        Command::Rules(cmd) => return local::rules(cmd),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "scanledger", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Audit(AuditCommand::Keygen { output }) => {
            return audit::keygen(output).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify {
            bundle: Some(bundle),
            public_keys,
            ..
        }) => return audit::verify_bundle(bundle, public_keys),
        _ => {}
    }
    let dbargs = cli
        .command
        .db()
        .expect("every command but the local ones has database flags");
    let result = match &cli.command {
        // The owner's commands.
        Command::Migrate { .. } => {
            let db = dbargs.open_owner().await?;
            bring_up(&db.database, dbargs, false)
                .await
                .context(OWNER_HINT)?;
            tracing::info!(app_role = %dbargs.app_role, "database is up to date");
            Ok(())
        }
        Command::Projections(cmd) => {
            let db = dbargs.open_owner().await?;
            // Projection commands inspect or repair a projection the start-up check refuses.
            bring_up(&db.database, dbargs, true)
                .await
                .context(OWNER_HINT)?;
            commands::projections(&db.database, cmd).await
        }
        // An auditor's: any login that may read the ledger (--owner-url, else DATABASE_URL);
        // nothing is migrated or checked first.
        Command::Audit(cmd) => {
            let db = dbargs.open_owner().await?;
            audit::run(&db.database, cmd).await
        }
        // The runtime login's.
        command => {
            let db = dbargs.open_runtime().await?;
            prepare_runtime(&db, dbargs).await?;
            let result = match command {
                Command::Serve { args, ops, .. } => {
                    let components = serve::Components {
                        command: "serve",
                        api: Some(&args.api),
                        worker: Some(&args.worker),
                        azure: Some(&args.worker.azure),
                        ops,
                    };
                    serve::serve(&db, dbargs, components).await
                }
                Command::Api {
                    args, azure, ops, ..
                } => {
                    let components = serve::Components {
                        command: "api",
                        api: Some(args),
                        worker: None,
                        azure: Some(azure),
                        ops,
                    };
                    serve::serve(&db, dbargs, components).await
                }
                Command::Worker { args, ops, .. } => {
                    let components = serve::Components {
                        command: "worker",
                        api: None,
                        worker: Some(args),
                        azure: None,
                        ops,
                    };
                    serve::serve(&db, dbargs, components).await
                }
                Command::Tokens(cmd) => commands::tokens(&db, cmd).await,
                Command::Mutes(cmd) => commands::mutes(&db, cmd).await,
                Command::Backfill(cmd) => commands::backfill(&db, cmd).await,
                Command::Demo { args, .. } => local::demo(&db, dbargs, args).await,
                Command::Migrate { .. }
                | Command::Projections(_)
                | Command::Audit(_)
                | Command::Scan(_)
                | Command::Rules(_)
                | Command::Completions { .. } => unreachable!("dispatched above"),
            };
            drop(db);
            result
        }
    };
    result.map(|()| std::process::ExitCode::SUCCESS)
}

/// Migrate as `owner`, granting the runtime privileges to `--app-role`. A projection
/// the check refuses is rebuilt when the operator asked for it (--rebuild-projections);
/// with `projection_cmd` it is left for the projection command to inspect or repair.
pub(super) async fn bring_up(
    owner: &Database,
    args: &DbArgs,
    projection_cmd: bool,
) -> anyhow::Result<()> {
    let mut rebuilt: Vec<String> = Vec::new();
    loop {
        match schema::migrate_for(owner, &args.app_role).await {
            Ok(()) => return Ok(()),
            Err(e)
                if e.projection_to_rebuild().is_some()
                    && (projection_cmd || args.rebuild_projections) =>
            {
                if projection_cmd {
                    return Ok(());
                }
                let name = e.projection_to_rebuild().unwrap_or_default().to_string();
                rebuild_once(owner, &name, &mut rebuilt).await?;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("migrating the database")),
        }
    }
}

async fn rebuild_once(
    owner: &Database,
    name: &str,
    rebuilt: &mut Vec<String>,
) -> anyhow::Result<()> {
    if rebuilt.iter().any(|r| r == name) {
        anyhow::bail!("projection {name} still fails the start-up check after a rebuild");
    }
    tracing::warn!(projection = %name, "rebuilding the projection before serving (--rebuild-projections)");
    commands::rebuild(owner, name).await?;
    rebuilt.push(name.to_string());
    Ok(())
}

/// Before a runtime command works: refuse a login that is (or can become) the owner,
/// unless --allow-owner-login (which then migrates, as before); otherwise the login must
/// be in the runtime group role and the schema must already be current (a runtime
/// login does not migrate).
async fn prepare_runtime(db: &Db, args: &DbArgs) -> anyhow::Result<()> {
    let mut conn = db.database.owner_connection().await?;
    let login = access::inspect(&mut conn, &args.app_role).await?;
    if let Some(reason) = login.owner_reason() {
        anyhow::ensure!(
            args.allow_owner_login,
            "{}",
            access::owner_login_refusal(&reason, &args.app_role)
        );
        tracing::warn!(login = %login.name, "{reason}: running as the owner (--allow-owner-login)");
        conn.close().await?;
        return bring_up(&db.database, args, false).await;
    }
    anyhow::ensure!(
        login.in_app_role,
        "{}",
        access::not_in_app_role_refusal(&login, &args.app_role)
    );
    let mut rebuilt: Vec<String> = Vec::new();
    loop {
        match schema::check_current(&mut conn).await {
            Ok(()) => break,
            Err(e) if e.projection_to_rebuild().is_some() && args.rebuild_projections => {
                let name = e.projection_to_rebuild().unwrap_or_default().to_string();
                let Some(owner) = &db.owner else {
                    anyhow::bail!(
                        "{e}; with a runtime login, --rebuild-projections needs the owner's \
                         URL in --owner-url (SCANLEDGER_OWNER_URL)"
                    );
                };
                rebuild_once(owner, &name, &mut rebuilt).await?;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "checking the database schema as the runtime login {:?}",
                    login.name
                )))
            }
        }
    }
    conn.close().await?;
    Ok(())
}
