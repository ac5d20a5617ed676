//! `scanledger audit`: verify the ledger (online or a bundle), export bundles, append a
//! checkpoint, make a signing key.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::flags::AuditCommand;
use crate::domain::integrity::{self, Broken, Summary};
use crate::domain::ScanId;
use crate::ledger::audit::{self, Scope, Signer};
use crate::ledger::Ledger;
use crate::pg::Database;

fn keys(hex_keys: &[String]) -> anyhow::Result<Vec<Vec<u8>>> {
    hex_keys
        .iter()
        .map(|k| {
            integrity::unhex(k.trim())
                .filter(|k| k.len() == 32)
                .ok_or_else(|| {
                    super::UsageError(format!("--public-key {k:?} is not 64 hex digits")).into()
                })
        })
        .collect()
}

/// Print the outcome; the first broken place is the error (exit 1).
fn report(summary: Summary, broken: Vec<Broken>) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&summary)?);
    match broken.first() {
        None => {
            eprintln!(
                "ledger verified: {} events in {} scans, {} findings, {} checkpoints ({} signed); {} events not under a checkpoint (chained only)",
                summary.events,
                summary.scans,
                summary.findings,
                summary.checkpoints,
                summary.signed_checkpoints,
                summary.events_after_last_checkpoint
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(first) => {
            for b in broken.iter().skip(1).take(20) {
                eprintln!("also broken: {b}");
            }
            anyhow::bail!("integrity broken ({} places): {first}", broken.len())
        }
    }
}

pub(super) fn verify_bundle(path: &Path, public_keys: &[String]) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the bundle {}", path.display()))?;
    let trusted = keys(public_keys)?;
    match integrity::verify_bundle(&text, &trusted) {
        Ok((summary, broken)) => report(summary, broken),
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    }
}

pub(super) fn keygen(output: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let seed = Signer::generate_seed_hex();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(output)
        .with_context(|| format!("creating {} (it must not exist)", output.display()))?;
    writeln!(f, "{seed}")?;
    let signer = Signer::from_file(output)?;
    println!("{}", integrity::hex(&signer.public_key()));
    eprintln!(
        "signing key {} written to {}; its public key (above) is what auditors check with",
        signer.key_id(),
        output.display()
    );
    Ok(())
}

pub(super) async fn run(db: &Database, cmd: &AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify {
            bundle: None,
            public_keys,
            ..
        } => {
            let trusted = keys(public_keys)?;
            let mut conn = db.owner_connection().await?;
            let (summary, broken) = audit::verify(&mut conn, &trusted, |n| {
                eprintln!("verify: {n} events");
            })
            .await?;
            report(summary, broken).map(|_| ())
        }
        AuditCommand::Verify {
            bundle: Some(_), ..
        }
        | AuditCommand::Keygen { .. } => {
            unreachable!("dispatched before the database opens")
        }
        AuditCommand::Export {
            scan,
            subscription,
            since,
            output,
            signing_key,
            ..
        } => {
            let scope = match (scan, subscription, since) {
                (Some(s), _, _) => Scope::Scan(ScanId(*s)),
                (_, Some(s), _) => Scope::Subscription(
                    crate::domain::SubscriptionId::parse(s)
                        .map_err(|e| super::UsageError(format!("--subscription {s:?}: {e}")))?
                        .to_string(),
                ),
                (_, _, Some(t)) => Scope::Since(*t),
                _ => {
                    return Err(super::UsageError(
                        "name what to export: --scan, --subscription or --since".into(),
                    )
                    .into())
                }
            };
            let public_key = match signing_key {
                Some(p) => Some(Signer::from_file(p)?.public_key()),
                None => None,
            };
            let pool = db.pool(1).await?;
            let lines = audit::bundle(&pool, &scope, public_key).await?;
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(output)
                    .with_context(|| format!("creating {}", output.display()))?,
            );
            audit::write_bundle(&mut out, &lines)?;
            std::io::Write::flush(&mut out)?;
            eprintln!(
                "{} lines ({scope}) written to {}",
                lines.len(),
                output.display()
            );
            Ok(())
        }
        AuditCommand::Checkpoint { signing_key, .. } => {
            let signer = match signing_key {
                Some(p) => Some(Signer::from_file(p)?),
                None => None,
            };
            let pool = db.pool(1).await?;
            match Ledger::new(pool).checkpoint(signer.as_ref()).await? {
                Some(cp) => println!("{}", serde_json::to_string(&cp)?),
                None => eprintln!("nothing new to checkpoint (or another checkpointer is running)"),
            }
            Ok(())
        }
    }
}
