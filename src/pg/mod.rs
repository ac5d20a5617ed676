//! PostgreSQL plumbing: connection pools, forward-only migrations, and a local
//! cluster the service (and the tests) start themselves when no `DATABASE_URL` is given.

pub mod access;
pub mod cluster;
pub mod migrate;
pub mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use cluster::{ClusterError, ClusterOptions, LocalCluster};

/// The default name of the NOLOGIN group role the migrations grant the runtime
/// privileges to (INSERT of the writer's columns and SELECT on the ledger, nothing more).
/// Runtime logins are members of it; `--app-role` names another group role, made a
/// member of this one by `migrate` (see [`access::grant_app_role`]).
pub const APP_ROLE: &str = "scanledger_app";

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("invalid database URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
}

/// The longest a pooled connection's statement (or idle transaction) may last.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How to open pools and connections against one database, as the login the URL (or
/// the options) name: no `SET ROLE`, so a session can never give back more than that
/// login has.
#[derive(Clone, Debug)]
pub struct Database {
    options: PgConnectOptions,
}

impl Database {
    pub fn from_url(url: &str) -> Result<Self, PgError> {
        let options = PgConnectOptions::from_str(url).map_err(PgError::BadUrl)?;
        Ok(Self::from_options(options))
    }

    pub fn from_options(options: PgConnectOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// A pool of connections as this login. Every statement has a time limit, and so
    /// has a transaction left idle: a stuck query or a forgotten transaction ends instead
    /// of holding locks (and the feed's horizon) forever. Operator commands use
    /// [`Database::owner_connection`], without limits: a rebuild may run for minutes.
    pub async fn pool(&self, max_connections: u32) -> Result<PgPool, PgError> {
        let limit = format!("{}s", STATEMENT_TIMEOUT.as_secs());
        let options = self.options.clone().options([
            ("statement_timeout", limit.as_str()),
            ("idle_in_transaction_session_timeout", limit.as_str()),
        ]);
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(PgError::Connect)
    }

    /// One connection as this login (the owner's, for operator commands and migrations).
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
