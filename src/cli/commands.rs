//! The operator's one-shot commands: tokens, projections, backfill.

use anyhow::Context;

use super::flags::{BackfillCommand, ProjectionsCommand, TokensCommand};
use super::serve::Db;
use crate::api;
use crate::ledger::Ledger;
use crate::pg::Database;

/// Prints `applied/total (rate/s)` on stderr, rewriting one line on a terminal.
pub(super) fn progress_printer(
    what: &'static str,
    unit: &'static str,
) -> impl FnMut(u64, u64, f64) + Send {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    move |done, total, rate| {
        let pct = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        if tty {
            eprint!("\r{what}: {done}/{total} {unit} ({pct:.0}%, {rate:.0}/s)   ");
        } else {
            eprintln!("{what}: {done}/{total} {unit} ({pct:.0}%, {rate:.0}/s)");
        }
    }
}

pub(super) async fn rebuild(owner: &Database, name: &str) -> anyhow::Result<()> {
    let mut progress = progress_printer("rebuild", "events");
    let report = crate::ledger::replay::rebuild(owner, name, &mut progress).await?;
    eprintln!();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub(super) async fn projections(owner: &Database, cmd: &ProjectionsCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectionsCommand::Status { .. } => {
            let mut conn = owner.owner_connection().await?;
            for p in crate::ledger::replay::status(&mut conn).await? {
                println!("{}", serde_json::to_string(&p)?);
            }
            Ok(())
        }
        ProjectionsCommand::Verify { name, .. } => {
            let mut conn = owner.owner_connection().await?;
            let mut progress = progress_printer("verify", "events");
            let report = crate::ledger::replay::verify(&mut conn, name, &mut progress).await?;
            eprintln!();
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.differences.is_empty() {
                eprintln!(
                    "{name}: {} rows match a replay of {} events",
                    report.rows, report.events
                );
                Ok(())
            } else {
                anyhow::bail!(
                    "{name}: {} rows differ from a replay of the ledger",
                    report.differences.len()
                )
            }
        }
        ProjectionsCommand::Rebuild { name, .. } => rebuild(owner, name).await,
    }
}

pub(super) async fn backfill(db: &Db, cmd: &BackfillCommand) -> anyhow::Result<()> {
    use sqlx::Connection;
    let BackfillCommand::Openshield {
        from,
        from_file,
        non_terminal,
        dry_run,
        batch,
        ..
    } = cmd;
    let from = match (from, from_file) {
        (Some(url), _) => url.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --from-file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        (None, None) => anyhow::bail!(
            "name the OpenShield database: --from, OPENSHIELD_DATABASE_URL or --from-file"
        ),
    };
    let options =
        std::str::FromStr::from_str(&from).context("the --from URL is not a PostgreSQL URL")?;
    let mut src = sqlx::PgConnection::connect_with(&options)
        .await
        .context("connecting to the OpenShield database")?;
    let pool = db.database.pool(2).await?;
    let ledger = Ledger::new(pool.clone());
    let opts = crate::backfill::BackfillOptions {
        non_terminal: *non_terminal,
        dry_run: *dry_run,
        batch: (*batch).clamp(1, 10_000),
        max_attempts: 3,
    };
    let mut progress = progress_printer("backfill", "scans");
    let report =
        crate::backfill::openshield::import(&mut src, &ledger, &opts, &mut progress).await?;
    eprintln!();
    println!("{}", serde_json::to_string_pretty(&report)?);
    pool.close().await;
    Ok(())
}

pub(super) async fn tokens(db: &Db, cmd: &TokensCommand) -> anyhow::Result<()> {
    let pool = db.database.pool(1).await?;
    match cmd {
        TokensCommand::Create { role, name, .. } => {
            let token = api::auth::create_token(&pool, name, *role).await?;
            println!("{token}");
            eprintln!("token {name:?} ({role}) created; it is shown only now, store it safely");
        }
        TokensCommand::List { .. } => {
            println!("{:<32} {:<9} {:<26} revoked", "name", "role", "created");
            for t in api::auth::list_tokens(&pool).await? {
                let revoked = t.revoked_at.map_or("-".to_string(), |r| r.to_rfc3339());
                println!(
                    "{:<32} {:<9} {:<26} {revoked}",
                    t.name,
                    t.role,
                    t.created_at.to_rfc3339()
                );
            }
        }
        TokensCommand::Revoke { name, .. } => {
            if !api::auth::revoke_token(&pool, name).await? {
                anyhow::bail!("no live token named {name:?}");
            }
            eprintln!("token {name:?} revoked");
        }
    }
    pool.close().await;
    Ok(())
}
