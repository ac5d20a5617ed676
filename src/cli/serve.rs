//! Wiring the long-running processes: the database (a local cluster when
//! `DATABASE_URL` is unset), the worker and the API, and their shutdown.

use std::sync::Arc;

use anyhow::Context;

use super::flags::{ApiArgs, AzureArgs, DbArgs, OpsArgs, WorkerArgs};
use crate::api::{self, ApiConfig, AppState, AuthMode};
use crate::domain::integrity;
use crate::ledger::audit::Signer;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::pg::{self, ClusterOptions, Database, LocalCluster};
use crate::shutdown::Shutdown;
use crate::worker::{checkpointer, Worker};
use futures_util::FutureExt;

/// The database a command talks to, and the local cluster it started (if any), which
/// stops when this value is dropped.
pub struct Db {
    /// The login the command works as: the runtime login for serve, api, worker, tokens,
    /// backfill and demo; the owner for migrate and projections.
    pub database: Database,
    /// The owner, when the command has one: `--owner-url` (or, for owner commands,
    /// `DATABASE_URL`), or the local cluster's superuser.
    pub owner: Option<Database>,
    pub cluster: Option<LocalCluster>,
}

/// Name of the database created in a local cluster.
pub const LOCAL_DATABASE: &str = "scanledger";

/// The runtime login the local cluster wiring creates (member of `--app-role`, with a
/// generated password kept in the cluster's secrets file).
pub const LOCAL_RUNTIME_LOGIN: &str = "scanledger";

impl DbArgs {
    /// For `migrate` and `projections`: the owner (`--owner-url`, else `DATABASE_URL`,
    /// else the local cluster's superuser).
    pub async fn open_owner(&self) -> anyhow::Result<Db> {
        if let Some(url) = self.owner_url.as_ref().or(self.database_url.as_ref()) {
            let owner = Database::from_url(url)?;
            return Ok(Db {
                database: owner.clone(),
                owner: Some(owner),
                cluster: None,
            });
        }
        let cluster = self.start_local().await?;
        let owner = Database::from_options(cluster.connect_options(LOCAL_DATABASE));
        Ok(Db {
            database: owner.clone(),
            owner: Some(owner),
            cluster: Some(cluster),
        })
    }

    /// For the runtime commands: `DATABASE_URL` (checked by [`Self::prepare_runtime`]), or
    /// the local cluster, migrated here as its superuser and used through a separate
    /// runtime login.
    pub async fn open_runtime(&self) -> anyhow::Result<Db> {
        if let Some(url) = &self.database_url {
            let owner = self
                .owner_url
                .as_deref()
                .map(Database::from_url)
                .transpose()?;
            return Ok(Db {
                database: Database::from_url(url)?,
                owner,
                cluster: None,
            });
        }
        if self.owner_url.is_some() {
            return Err(super::UsageError(
                "--owner-url (SCANLEDGER_OWNER_URL) is set but DATABASE_URL is not: give the \
                 runtime login's URL in DATABASE_URL (or unset both to use the local cluster)"
                    .into(),
            )
            .into());
        }
        let cluster = self.start_local().await?;
        let owner = Database::from_options(cluster.connect_options(LOCAL_DATABASE));
        super::bring_up(&owner, self, false).await?;
        cluster
            .ensure_login(LOCAL_RUNTIME_LOGIN, Some(&self.app_role))
            .await
            .context("creating the local cluster's runtime login")?;
        let runtime = cluster
            .login_options(LOCAL_DATABASE, LOCAL_RUNTIME_LOGIN)
            .context("the local cluster's runtime login")?;
        Ok(Db {
            database: Database::from_options(runtime),
            owner: Some(owner),
            cluster: Some(cluster),
        })
    }

    async fn start_local(&self) -> anyhow::Result<LocalCluster> {
        let mut opts = ClusterOptions::new(&self.pg_dir);
        opts.port = self.pg_port;
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&opts))
            .await?
            .context("starting the local PostgreSQL cluster")?;
        tracing::info!(
            data_dir = %cluster.data_dir().display(),
            socket_dir = %cluster.socket_dir().display(),
            tcp_port = ?self.pg_port,
            "local PostgreSQL ready"
        );
        create_database(&cluster, LOCAL_DATABASE).await?;
        Ok(cluster)
    }
}

/// Create `name` in a local cluster unless it exists.
pub async fn create_database(cluster: &LocalCluster, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::raw_sql(&format!("CREATE DATABASE {}", pg::quote_ident(name)))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// What one long-running process runs.
pub(super) struct Components<'a> {
    /// The command (`serve`, `api`, `worker`, `demo`), for `scanledger_build_info`.
    pub command: &'static str,
    pub api: Option<&'a ApiArgs>,
    pub worker: Option<&'a WorkerArgs>,
    /// Azure settings for the API's --estates.
    pub azure: Option<&'a AzureArgs>,
    pub ops: &'a OpsArgs,
}

pub(super) async fn serve(
    db: &Db,
    dbargs: &DbArgs,
    components: Components<'_>,
) -> anyhow::Result<()> {
    serve_with(db, dbargs, components, std::future::pending(), false).await
}

/// Serve until a signal; `script` runs beside the components (the demo's), and when
/// `exit_after_script` is set its end stops everything.
pub(super) async fn serve_with(
    db: &Db,
    dbargs: &DbArgs,
    components: Components<'_>,
    script: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    exit_after_script: bool,
) -> anyhow::Result<()> {
    let Components {
        command,
        api: api_args,
        worker: worker_args,
        azure,
        ops,
    } = components;
    // Before anything starts: a SIGTERM during start-up must drain, not kill.
    let signalled = crate::shutdown::signal();
    // One registry for the process: the API's /metrics shows the worker's figures too.
    let metrics = Arc::new(Metrics::new(command));
    // The worker and the API get pools of their own: readers (long-polls, streams,
    // listings) can never take the connections claims and the reaper need. The worker's
    // heartbeats and outcomes have a connection each besides (`worker::appender`); its
    // pool is never smaller than its LISTEN connection plus claims, reaper and checkpoints.
    let worker_pool = match worker_args {
        Some(_) => Some(
            db.database
                .pool(dbargs.db_connections.max(crate::worker::SHARED_POOL_MIN))
                .await?,
        ),
        None => None,
    };
    let api_pool = match api_args {
        Some(_) => Some(db.database.pool(dbargs.db_connections).await?),
        None => None,
    };
    let (trigger, shutdown) = Shutdown::new();
    let mut tasks = tokio::task::JoinSet::new();
    let signer = match worker_args.and_then(|w| w.signing_key.as_deref()) {
        Some(path) => Some(Arc::new(Signer::from_file(path)?)),
        None => None,
    };

    if let (Some(args), Some(pool)) = (worker_args, &worker_pool) {
        let ledger = Ledger::new(pool.clone());
        if !args.checkpoint_interval.is_zero() {
            tasks.spawn(
                checkpointer::run(
                    ledger.clone(),
                    signer.clone(),
                    args.checkpoint_interval,
                    shutdown.clone(),
                )
                .map(Ok),
            );
        }
        metrics.azure.init();
        let job = Arc::new(args.job(&metrics)?);
        let worker =
            Worker::new(ledger.clone(), job, args.config())?.with_metrics(metrics.worker.clone());
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            worker.run(shutdown).await;
            Ok(())
        });
    }
    if let (Some(args), Some(pool)) = (api_args, &api_pool) {
        let ledger = Ledger::new(pool.clone());
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let auth = if args.no_auth {
            if !listener.local_addr()?.ip().is_loopback() {
                return Err(super::UsageError(format!(
                    "--no-auth is for local use: it needs a loopback --listen address, not {}",
                    args.listen
                ))
                .into());
            }
            tracing::warn!("authentication is off (--no-auth): every local caller is admin");
            AuthMode::Disabled
        } else {
            AuthMode::Tokens
        };
        let config = ApiConfig {
            max_attempts: args.max_attempts,
            request_timeout: args.request_timeout,
            cors_origins: args.cors_origins.clone(),
            audit_public_key: match (&args.audit_public_key, &signer) {
                (Some(hex), _) => Some(
                    integrity::unhex(hex.trim())
                        .filter(|k| k.len() == 32)
                        .ok_or_else(|| {
                            super::UsageError(
                                "--audit-public-key must be 64 hex digits (an Ed25519 public key)"
                                    .into(),
                            )
                        })?,
                ),
                (None, Some(s)) => Some(s.public_key()),
                (None, None) => None,
            },
            estates: match (args.estates, azure) {
                (false, _) => None,
                (true, Some(azure)) => Some(api::estates::Estates(Arc::new(
                    crate::scanner::azure::AzureSource::new(
                        &crate::scanner::azure::AzureSettings {
                            metrics: metrics.azure.clone(),
                            ..azure.settings()
                        },
                    )?,
                ))),
                (true, None) => {
                    return Err(
                        super::UsageError("--estates needs the --azure-* settings".into()).into(),
                    )
                }
            },
            // Compliance reads the worker's catalogue when it layers a folder over the
            // embedded one (an `api` process reads the embedded catalogue).
            controls: match worker_args {
                Some(w) if w.rules.rules_dir.is_some() => Some(Arc::new(
                    crate::scanner::compliance::Controls::of(&w.rules.load()?),
                )),
                _ => None,
            },
        };
        let mut state = AppState::new(ledger.clone(), auth, config);
        state.metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            api::serve(listener, state, shutdown)
                .await
                .context("API server")
        });
    }

    if let Some(addr) = &ops.metrics_listen {
        let pool = worker_pool
            .as_ref()
            .or(api_pool.as_ref())
            .expect("a long-running process has a pool");
        // A connection of its own: a scrape or a probe never queues behind claims.
        let ops_pool = Ledger::new(pool.clone())
            .dedicated(1, std::time::Duration::from_secs(3))
            .pool()
            .clone();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding --metrics-listen {addr}"))?;
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        tasks.spawn(async move {
            api::metrics::serve_ops(listener, metrics, ops_pool, shutdown)
                .await
                .context("metrics listener")
        });
    }

    let script = tokio::spawn(script);
    let script_done = async {
        match script.await {
            Ok(Ok(())) if !exit_after_script => std::future::pending().await,
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("demo script: {e}")),
        }
    };
    tokio::select! {
        _ = signalled => {}
        Some(res) = tasks.join_next() => {
            // A component ended on its own: stop the rest.
            res??;
        }
        res = script_done => {
            if let Err(e) = res {
                trigger.trigger();
                while tasks.join_next().await.is_some() {}
                return Err(e);
            }
        }
    }
    trigger.trigger();
    while let Some(res) = tasks.join_next().await {
        res??;
    }
    for pool in worker_pool.iter().chain(api_pool.iter()) {
        pool.close().await;
    }
    Ok(())
}
