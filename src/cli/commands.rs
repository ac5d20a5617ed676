//! The operator's one-shot commands: tokens, projections, backfill.

use anyhow::Context;

use super::flags::{BackfillCommand, MutesCommand, ProjectionsCommand, TokensCommand};
use super::serve::Db;
use super::UsageError;
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

pub(super) async fn mutes(db: &Db, cmd: &MutesCommand) -> anyhow::Result<()> {
    use crate::domain::governance::{GovernanceEvent, MuteAdded, MuteRemoved, MuteSelector};
    let pool = db.database.pool(1).await?;
    let ledger = Ledger::new(pool.clone());
    match cmd {
        MutesCommand::Add {
            fingerprint,
            rule,
            resource,
            reason,
            expires_in,
            by,
            ..
        } => {
            let selector = match (fingerprint, rule, resource) {
                (Some(fingerprint), _, _) => MuteSelector::Fingerprint {
                    fingerprint: fingerprint.clone(),
                },
                (None, Some(rule_id), Some(resource_pattern)) => MuteSelector::Rule {
                    rule_id: rule_id.clone(),
                    resource_pattern: resource_pattern.clone(),
                },
                _ => {
                    return Err(
                        UsageError("give --fingerprint, or --rule with --resource".into()).into(),
                    )
                }
            };
            let expires_at = expires_in
                .map(|d| chrono::Duration::from_std(d).map(|d| chrono::Utc::now() + d))
                .transpose()
                .map_err(|_| UsageError("--expires-in is too long".into()))?;
            let id = uuid::Uuid::new_v4();
            ledger
                .append_governance(
                    id,
                    0,
                    &format!("cli:{by}"),
                    GovernanceEvent::MuteAdded(MuteAdded {
                        selector,
                        reason: reason.clone(),
                        expires_at,
                    }),
                )
                .await?;
            println!("{id}");
            eprintln!("muted ({reason})");
        }
        MutesCommand::List { all, .. } => {
            let (g, now) = ledger.governance().await?;
            println!(
                "{:<36} {:<26} {:<20} {:<26} what / why",
                "id", "created", "by", "state"
            );
            for m in g.mutes.values().filter(|m| *all || m.active_at(now)) {
                let state = match (m.removed_at, m.expires_at) {
                    (Some(r), _) => format!("removed {}", r.format("%Y-%m-%d %H:%M")),
                    (None, Some(e)) if e <= now => {
                        format!("expired {}", e.format("%Y-%m-%d %H:%M"))
                    }
                    (None, Some(e)) => format!("until {}", e.format("%Y-%m-%d %H:%M")),
                    (None, None) => "active".into(),
                };
                let what = match &m.selector {
                    MuteSelector::Fingerprint { fingerprint } => format!("finding {fingerprint}"),
                    MuteSelector::Rule {
                        rule_id,
                        resource_pattern,
                    } => format!("{rule_id} on {resource_pattern}"),
                };
                println!(
                    "{:<36} {:<26} {:<20} {:<26} {what} / {}",
                    m.mute_id,
                    m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    m.created_by,
                    state,
                    m.reason
                );
            }
        }
        MutesCommand::Remove { id, reason, by, .. } => {
            let (g, _) = ledger.governance().await?;
            let mute = g
                .mutes
                .get(id)
                .ok_or_else(|| anyhow::anyhow!("no mute {id}"))?;
            if mute.removed_at.is_some() {
                anyhow::bail!("mute {id} was already removed");
            }
            ledger
                .append_governance(
                    *id,
                    mute.version,
                    &format!("cli:{by}"),
                    GovernanceEvent::MuteRemoved(MuteRemoved {
                        reason: reason.clone(),
                    }),
                )
                .await?;
            eprintln!("mute {id} removed");
        }
    }
    pool.close().await;
    Ok(())
}
