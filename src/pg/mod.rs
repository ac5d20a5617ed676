//! PostgreSQL plumbing: connection pools, forward-only migrations, and a local
//! cluster the service (and the tests) start themselves when no `DATABASE_URL` is given.

pub mod cluster;
pub mod migrate;
pub mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

pub use cluster::{ClusterError, ClusterOptions, LocalCluster};

/// The role the service acts as at run time: it may INSERT and SELECT on the ledger,
/// and nothing more, whatever login the connection string names.
pub const APP_ROLE: &str = "scanledger_app";

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("invalid database URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error(
        "cannot act as role {role}: {source}; grant it with `GRANT {role} TO <login>` \
         or pass --app-role ''"
    )]
    Role {
        role: String,
        #[source]
        source: sqlx::Error,
    },
}

/// How to open pools against one database.
#[derive(Clone, Debug)]
pub struct Database {
    options: PgConnectOptions,
    app_role: Option<String>,
}

impl Database {
    pub fn from_url(url: &str, app_role: Option<String>) -> Result<Self, PgError> {
        let options = PgConnectOptions::from_str(url).map_err(PgError::BadUrl)?;
        Ok(Self::from_options(options, app_role))
    }

    pub fn from_options(options: PgConnectOptions, app_role: Option<String>) -> Self {
        let app_role = app_role.filter(|r| !r.is_empty());
        Self { options, app_role }
    }

    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// A pool acting as the application role (`SET ROLE` on every new connection).
    pub async fn app_pool(&self, max_connections: u32) -> Result<PgPool, PgError> {
        let role = self.app_role.clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                let role = role.clone();
                Box::pin(async move {
                    if let Some(role) = role {
                        conn.execute(format!("SET ROLE {}", quote_ident(&role)).as_str())
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(self.options.clone())
            .await;
        match pool {
            Ok(pool) => Ok(pool),
            Err(e @ sqlx::Error::Database(_)) if self.app_role.is_some() => Err(PgError::Role {
                role: self.app_role.clone().unwrap_or_default(),
                source: e,
            }),
            Err(e) => Err(PgError::Connect(e)),
        }
    }

    /// One connection as the login named in the URL (the owner), for operator commands.
    pub async fn owner_connection(&self) -> Result<sqlx::PgConnection, PgError> {
        use sqlx::Connection;
        sqlx::PgConnection::connect_with(&self.options)
            .await
            .map_err(PgError::Connect)
    }
}

/// Quote an SQL identifier (role and database names come from configuration).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether the database answers (readiness probes).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
