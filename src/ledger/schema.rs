//! Bringing a database up to this build: the ledger's migrations, then the projections
//! (created empty over an empty ledger; over a non-empty one, a missing or older
//! projection must be rebuilt from the events, explicitly).

use sqlx::PgConnection;

use crate::pg::migrate::{self, MigrateError};
use crate::pg::{access, Database, PgError};
use crate::projection::table::{self, Projection};

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Connect(#[from] PgError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(
        "projection {name} is at version {found} but this build needs version {wanted}; \
         rebuild it from the ledger with `scanledger projections rebuild {name}` \
         (or start with --rebuild-projections)"
    )]
    ProjectionVersion {
        name: String,
        found: i32,
        wanted: i32,
    },
    #[error(
        "projection {name} is missing but the ledger holds events; rebuild it from the ledger \
         with `scanledger projections rebuild {name}` (or start with --rebuild-projections)"
    )]
    ProjectionMissing { name: String },
    #[error(
        "the database is not at this build's schema ({what}); bring it up to date as the \
         owner with `scanledger migrate --owner-url <owner's URL>` (or SCANLEDGER_OWNER_URL), \
         then start again"
    )]
    NotMigrated { what: String },
    #[error("database error during migration: {0}")]
    Db(#[from] sqlx::Error),
}

impl SchemaError {
    /// The projection a rebuild would repair, if that is what is wrong.
    pub fn projection_to_rebuild(&self) -> Option<&str> {
        match self {
            Self::ProjectionVersion { name, .. } | Self::ProjectionMissing { name } => Some(name),
            _ => None,
        }
    }
}

/// Apply migrations and install projections as the login named by `owner`, granting
/// the runtime privileges to the default group role ([`crate::pg::APP_ROLE`]).
pub async fn migrate(owner: &Database) -> Result<(), SchemaError> {
    migrate_for(owner, crate::pg::APP_ROLE).await
}

/// [`migrate`], with `app_role` as the runtime group role (created when missing; see
/// [`access::grant_app_role`]).
pub async fn migrate_for(owner: &Database, app_role: &str) -> Result<(), SchemaError> {
    let mut conn = owner.owner_connection().await?;
    migrate::lock(&mut conn).await?;
    let result = bring_up(&mut conn, app_role).await;
    migrate::unlock(&mut conn).await?;
    result
}

/// Whether the database of `conn` is at this build's schema (every migration applied,
/// every projection at this build's version), checked by a runtime login, which may not
/// migrate.
pub async fn check_current(conn: &mut PgConnection) -> Result<(), SchemaError> {
    match migrate::pending(conn).await? {
        None => {
            return Err(SchemaError::NotMigrated {
                what: "this login cannot read schema_migrations".into(),
            })
        }
        Some(pending) if !pending.is_empty() => {
            let list: Vec<String> = pending.iter().map(|(v, n)| format!("{v} {n}")).collect();
            return Err(SchemaError::NotMigrated {
                what: format!("migrations pending: {}", list.join(", ")),
            });
        }
        Some(_) => {}
    }
    for p in Projection::all() {
        match table::stored_version(conn, p).await? {
            Some(v) if v == p.version => {}
            Some(found) => {
                return Err(SchemaError::ProjectionVersion {
                    name: p.name.to_string(),
                    found,
                    wanted: p.version,
                })
            }
            None => {
                return Err(SchemaError::NotMigrated {
                    what: format!("projection {} is not installed", p.name),
                })
            }
        }
    }
    Ok(())
}

async fn bring_up(conn: &mut PgConnection, app_role: &str) -> Result<(), SchemaError> {
    migrate::apply(conn).await?;
    migrate::harden(conn).await?;
    access::grant_app_role(conn, app_role).await?;
    for p in Projection::all() {
        match table::stored_version(conn, p).await? {
            Some(v) if v == p.version => {}
            Some(found) => {
                return Err(SchemaError::ProjectionVersion {
                    name: p.name.to_string(),
                    found,
                    wanted: p.version,
                })
            }
            None => {
                let has_events: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM scan_events)")
                        .fetch_one(&mut *conn)
                        .await?;
                if has_events {
                    return Err(SchemaError::ProjectionMissing {
                        name: p.name.to_string(),
                    });
                }
                table::install_empty(conn, p).await?;
            }
        }
    }
    Ok(())
}
