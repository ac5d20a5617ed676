//! Command-line interface: argument definitions and the commands they dispatch to.
//! Every flag has an environment-variable equivalent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::api::{self, ApiConfig, AppState, AuthMode, Role};
use crate::ledger::{Ledger, WorkerId};
use crate::pg::migrate::MigrateError;
use crate::pg::{self, ClusterOptions, Database, LocalCluster, PgError};
use crate::scanner::{RuleScan, SourceSpec};

mod local;
use crate::worker::{self, RetryPolicy, Shutdown, Worker, WorkerConfig};
pub use local::DEMO_SUBSCRIPTION;

#[derive(Debug, Parser)]
#[command(
    name = "scanledger",
    version,
    about = "Asynchronous cloud security posture scans, every step kept as an immutable fact in PostgreSQL."
)]
pub struct Cli {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and a worker in one process (starts a local PostgreSQL when DATABASE_URL is unset).
    Serve(ServeArgs),
    /// Run the HTTP API only.
    Api(ApiArgs),
    /// Run a worker only: claim scans, run them, reap expired leases.
    Worker(WorkerArgs),
    /// Apply database migrations and projection DDL, then exit.
    Migrate,
    /// Manage API tokens (only their hashes are stored).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Inspect, verify and rebuild read models from the ledger.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Import history from an older system, explicitly.
    #[command(subcommand)]
    Backfill(BackfillCommand),
    /// Run one scan locally, without the service, and print its findings.
    Scan(local::ScanArgs),
    /// List the rule catalogue or run every rule's fixtures.
    #[command(subcommand)]
    Rules(local::RulesCommand),
    /// Start everything locally, scan the demo tenant, show progress and findings.
    Demo(local::DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Import the OpenShield `scans` and `findings` tables (running it twice adds nothing).
    Openshield {
        /// Connection URL of the OpenShield database (read only; never logged).
        #[arg(long = "from", env = "OPENSHIELD_DATABASE_URL", hide_env_values = true)]
        from: String,
        /// What to do with scans still pending, running or without status there.
        /// Required when any exist.
        #[arg(long, value_enum)]
        non_terminal: Option<crate::backfill::NonTerminal>,
        /// Print what would be appended; append nothing.
        #[arg(long)]
        dry_run: bool,
        /// Scans per read and per append transaction.
        #[arg(long, default_value_t = 200)]
        batch: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's version (stored and built-in), position and lag behind the ledger.
    Status,
    /// Replay the ledger into a scratch table and list every row that differs from the
    /// live one; exit code 1 on any difference.
    Verify { name: String },
    /// Rebuild from the ledger into a shadow table, catch up, and swap it in while the
    /// service keeps serving.
    Rebuild { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it once.
    Create {
        /// reader (read everything), operator (+ trigger, cancel) or admin (+ tokens).
        #[arg(long)]
        role: Role,
        /// A unique name: recorded in events as who triggered or cancelled a scan.
        #[arg(long)]
        name: String,
    },
    /// List tokens (names, roles, dates; never the tokens).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// PostgreSQL connection URL. When unset, a local cluster in --pg-dir is used (and started if needed).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Data folder of the local PostgreSQL cluster (used when DATABASE_URL is unset).
    #[arg(
        long,
        env = "SCANLEDGER_PG_DIR",
        default_value = ".scanledger/pg",
        global = true
    )]
    pub pg_dir: PathBuf,
    /// TCP port of the local cluster on 127.0.0.1.
    #[arg(
        long,
        env = "SCANLEDGER_PG_PORT",
        default_value_t = 54329,
        global = true
    )]
    pub pg_port: u16,
    /// Role the service acts as at run time (INSERT and SELECT only on the ledger); '' keeps the login role.
    #[arg(long, env = "SCANLEDGER_APP_ROLE", default_value = pg::APP_ROLE, global = true)]
    pub app_role: String,
    /// Connections in the pool.
    #[arg(
        long,
        env = "SCANLEDGER_DB_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_connections: u32,
    /// At start-up, rebuild a projection whose stored version differs from this build's
    /// (instead of refusing to start).
    #[arg(long, env = "SCANLEDGER_REBUILD_PROJECTIONS", global = true)]
    pub rebuild_projections: bool,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "SCANLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Attempts a new scan gets before it ends failed.
    #[arg(long, env = "SCANLEDGER_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub max_attempts: i32,
    /// Serve without authentication (every caller is admin `local`). Refused unless
    /// --listen is a loopback address.
    #[arg(long, env = "SCANLEDGER_NO_AUTH")]
    pub no_auth: bool,
    /// Time a request may take (a long-poll gets its `wait` on top).
    #[arg(long, env = "SCANLEDGER_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Allow this browser origin (repeatable, or comma-separated). CORS is off by default.
    #[arg(
        long = "cors-origin",
        env = "SCANLEDGER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where scans read their inventory: fixture:PATH[?delay_ms=N] or azure.
    #[arg(long, env = "SCANLEDGER_SOURCE", default_value = "fixture:demo/tenant")]
    pub source: String,
    #[command(flatten)]
    pub rules: local::RulesDir,
    #[command(flatten)]
    pub azure: crate::scanner::azure::AzureArgs,
    /// Scans run at once by this process.
    #[arg(long, env = "SCANLEDGER_CONCURRENCY", default_value_t = worker::CONCURRENCY_DEFAULT)]
    pub concurrency: usize,
    /// Interval between heartbeats of a running scan (e.g. 5s, 500ms).
    #[arg(long, env = "SCANLEDGER_HEARTBEAT", default_value = "5s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Lease each claim and heartbeat grants; a scan whose lease runs out is timed out and retried.
    #[arg(long, env = "SCANLEDGER_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
    /// Polling fallback when no notification arrives.
    #[arg(long, env = "SCANLEDGER_POLL", default_value = "1s", value_parser = parse_duration)]
    pub poll: Duration,
    /// How often this worker's reaper looks for expired leases.
    #[arg(long, env = "SCANLEDGER_REAPER_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub reaper_interval: Duration,
    /// On SIGTERM, time running scans get to finish before they are handed back.
    #[arg(long, env = "SCANLEDGER_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Most scans claimed in one round trip.
    #[arg(long, env = "SCANLEDGER_CLAIM_BATCH", default_value_t = worker::CLAIM_BATCH_DEFAULT)]
    pub claim_batch: usize,
    /// Back-off before the second attempt; doubles per attempt, with jitter.
    #[arg(long, env = "SCANLEDGER_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Longest back-off between attempts.
    #[arg(long, env = "SCANLEDGER_RETRY_CAP", default_value = "5m", value_parser = parse_duration)]
    pub retry_cap: Duration,
    /// Allow several scans of one subscription to run at once (default: one at a time,
    /// the others queue behind it).
    #[arg(long, env = "SCANLEDGER_PARALLEL_PER_SUBSCRIPTION")]
    pub parallel_per_subscription: bool,
    /// Worker id recorded in events (default: host-pid-random).
    #[arg(long, env = "SCANLEDGER_WORKER_ID")]
    pub worker_id: Option<String>,
}

/// `serve`'s flags as the demo sets them (defaults and environment still apply).
#[derive(Debug, Parser)]
struct DemoServe {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

impl ServeArgs {
    fn demo(listen: &str, source: &str, rules: &local::RulesDir) -> anyhow::Result<Self> {
        use clap::ValueEnum;
        let rules_dir = &rules.rules_dir;
        let engine = rules.engine.to_possible_value().expect("a named value");
        let rule_engine = engine.get_name();
        let d = DemoServe::try_parse_from([
            "demo",
            "--listen",
            listen,
            "--no-auth",
            "--source",
            source,
            "--rules-dir",
            &rules_dir.display().to_string(),
            "--rule-engine",
            rule_engine,
            "--heartbeat",
            "200ms",
        ])?;
        Ok(Self {
            api: d.api,
            worker: d.worker,
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// `500ms`, `5s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 5s, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    }
}

impl WorkerArgs {
    /// The scan job: the source and the rule catalogue, both checked before serving.
    pub fn job(&self) -> anyhow::Result<RuleScan> {
        let spec: SourceSpec = self.source.parse()?;
        let catalogue = Arc::new(self.rules.load()?);
        let source = spec.open(&self.azure)?;
        tracing::info!(rules = catalogue.rules().len(), source = %self.source, "scan job ready");
        Ok(RuleScan::new(source, catalogue))
    }

    pub fn config(&self) -> WorkerConfig {
        WorkerConfig {
            id: self
                .worker_id
                .clone()
                .map(WorkerId::new)
                .unwrap_or_else(WorkerId::generate),
            concurrency: self.concurrency,
            heartbeat: self.heartbeat,
            lease: self.lease,
            poll: self.poll,
            reaper_interval: self.reaper_interval,
            grace: self.grace,
            claim_batch: self.claim_batch,
            retry: RetryPolicy {
                base: self.retry_base,
                cap: self.retry_cap,
            },
            one_per_subscription: !self.parallel_per_subscription,
        }
    }
}

/// The database a command talks to, and the local cluster it started (if any), which
/// stops when this value is dropped.
pub struct Db {
    pub database: Database,
    pub cluster: Option<LocalCluster>,
}

/// Name of the database created in a local cluster.
pub const LOCAL_DATABASE: &str = "scanledger";

impl DbArgs {
    pub async fn open(&self) -> anyhow::Result<Db> {
        let role = Some(self.app_role.clone());
        if let Some(url) = &self.database_url {
            return Ok(Db {
                database: Database::from_url(url, role)?,
                cluster: None,
            });
        }
        let mut opts = ClusterOptions::new(&self.pg_dir);
        opts.port = Some(self.pg_port);
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&opts))
            .await?
            .context("starting the local PostgreSQL cluster")?;
        tracing::info!(data_dir = %cluster.data_dir().display(), port = cluster.port(), "local PostgreSQL ready");
        create_database(&cluster, LOCAL_DATABASE).await?;
        Ok(Db {
            database: Database::from_options(cluster.connect_options(LOCAL_DATABASE), role),
            cluster: Some(cluster),
        })
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
        match db.database.migrate().await {
            Ok(()) => break,
            Err(PgError::Migrate(
                MigrateError::ProjectionVersion { name, .. }
                | MigrateError::ProjectionMissing { name },
            )) if projection_cmd || cli.db.rebuild_projections => {
                if projection_cmd {
                    break;
                }
                if rebuilt.contains(&name) {
                    anyhow::bail!(
                        "projection {name} still fails the start-up check after a rebuild"
                    );
                }
                tracing::warn!(projection = %name, "rebuilding the projection before serving (--rebuild-projections)");
                rebuild(&db, &name).await?;
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
        Command::Serve(args) => serve(&db, &cli.db, Some(&args.api), Some(&args.worker)).await,
        Command::Api(args) => serve(&db, &cli.db, Some(args), None).await,
        Command::Worker(args) => serve(&db, &cli.db, None, Some(args)).await,
        Command::Tokens(cmd) => tokens(&db, cmd).await,
        Command::Projections(cmd) => projections(&db, cmd).await,
        Command::Backfill(cmd) => backfill(&db, cmd).await,
        Command::Demo(args) => local::demo(&db, &cli.db, args).await,
        Command::Scan(_) | Command::Rules(_) => unreachable!("dispatched above"),
    };
    drop(db);
    result.map(|()| std::process::ExitCode::SUCCESS)
}

/// Prints `applied/total (rate/s)` on stderr, rewriting one line on a terminal.
fn progress_printer(what: &'static str, unit: &'static str) -> impl FnMut(u64, u64, f64) + Send {
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

async fn rebuild(db: &Db, name: &str) -> anyhow::Result<()> {
    let mut conn = db.database.owner_connection().await?;
    let mut progress = progress_printer("rebuild", "events");
    let report = crate::projection::rebuild::rebuild(&mut conn, name, &mut progress).await?;
    eprintln!();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn projections(db: &Db, cmd: &ProjectionsCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectionsCommand::Status => {
            let mut conn = db.database.owner_connection().await?;
            for p in crate::projection::rebuild::status(&mut conn).await? {
                println!("{}", serde_json::to_string(&p)?);
            }
            Ok(())
        }
        ProjectionsCommand::Verify { name } => {
            let mut conn = db.database.owner_connection().await?;
            let mut progress = progress_printer("verify", "events");
            let report = crate::projection::rebuild::verify(&mut conn, name, &mut progress).await?;
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
        ProjectionsCommand::Rebuild { name } => rebuild(db, name).await,
    }
}

async fn backfill(db: &Db, cmd: &BackfillCommand) -> anyhow::Result<()> {
    use sqlx::Connection;
    let BackfillCommand::Openshield {
        from,
        non_terminal,
        dry_run,
        batch,
    } = cmd;
    let options =
        std::str::FromStr::from_str(from).context("the --from URL is not a PostgreSQL URL")?;
    let mut src = sqlx::PgConnection::connect_with(&options)
        .await
        .context("connecting to the OpenShield database")?;
    let pool = db.database.app_pool(2).await?;
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

async fn tokens(db: &Db, cmd: &TokensCommand) -> anyhow::Result<()> {
    let pool = db.database.app_pool(1).await?;
    match cmd {
        TokensCommand::Create { role, name } => {
            let token = api::auth::create_token(&pool, name, *role).await?;
            println!("{token}");
            eprintln!("token {name:?} ({role}) created; it is shown only now, store it safely");
        }
        TokensCommand::List => {
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
        TokensCommand::Revoke { name } => {
            if !api::auth::revoke_token(&pool, name).await? {
                anyhow::bail!("no live token named {name:?}");
            }
            eprintln!("token {name:?} revoked");
        }
    }
    pool.close().await;
    Ok(())
}

async fn serve(
    db: &Db,
    dbargs: &DbArgs,
    api_args: Option<&ApiArgs>,
    worker_args: Option<&WorkerArgs>,
) -> anyhow::Result<()> {
    serve_with(
        db,
        dbargs,
        api_args,
        worker_args,
        std::future::pending(),
        false,
    )
    .await
}

/// Serve until a signal; `script` runs beside the components (the demo's), and when
/// `exit_after_script` is set its end stops everything.
async fn serve_with(
    db: &Db,
    dbargs: &DbArgs,
    api_args: Option<&ApiArgs>,
    worker_args: Option<&WorkerArgs>,
    script: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    exit_after_script: bool,
) -> anyhow::Result<()> {
    let pool = db.database.app_pool(dbargs.db_connections).await?;
    let ledger = Ledger::new(pool.clone());
    let (trigger, shutdown) = Shutdown::new();
    let mut tasks = tokio::task::JoinSet::new();

    if let Some(args) = worker_args {
        let job = Arc::new(args.job()?);
        let worker = Worker::new(ledger.clone(), job, args.config())?;
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            worker.run(shutdown).await;
            Ok(())
        });
    }
    if let Some(args) = api_args {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let auth = if args.no_auth {
            if !listener.local_addr()?.ip().is_loopback() {
                anyhow::bail!(
                    "--no-auth is for local use: it needs a loopback --listen address, not {}",
                    args.listen
                );
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
        };
        let state = AppState::new(ledger.clone(), auth, config);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            api::serve(listener, state, shutdown)
                .await
                .context("API server")
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
        _ = worker::shutdown::signal() => {}
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
    pool.close().await;
    Ok(())
}
