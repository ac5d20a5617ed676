//! Every flag of every command, each with an environment-variable equivalent, and the
//! conversions from flags to the settings the library takes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::local;
use crate::api::Role;
use crate::domain::WorkerId;
use crate::pg;
use crate::scanner::azure::{AzureSettings, CredentialKind, Secret};
use crate::scanner::{RuleScan, SourceSpec};
use crate::worker::{self, RetryPolicy, WorkerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "scanledger",
    version,
    about = "Asynchronous cloud security posture scans, every step kept as an immutable fact in PostgreSQL."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on stderr: `text`, or `json` (one JSON object per line, with the
    /// enclosing spans' fields: worker_id, scan_id, request_id).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SCANLEDGER_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: crate::telemetry::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and a worker in one process (starts a local PostgreSQL when DATABASE_URL is unset).
    Serve {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: ServeArgs,
        #[command(flatten)]
        ops: OpsArgs,
    },
    /// Run the HTTP API only.
    Api {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: ApiArgs,
        /// Azure settings for --estates (listing subscriptions).
        #[command(flatten)]
        azure: AzureArgs,
        #[command(flatten)]
        ops: OpsArgs,
    },
    /// Run a worker only: claim scans, run them, reap expired leases.
    Worker {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: WorkerArgs,
        #[command(flatten)]
        ops: OpsArgs,
    },
    /// As the owner (--owner-url, else DATABASE_URL): apply database migrations and
    /// projection DDL, grant the runtime privileges to --app-role, then exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage API tokens (only their hashes are stored).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Mute findings (with a reason, optionally until a date), list and remove mutes;
    /// every change is an appended, hash-chained fact.
    #[command(subcommand)]
    Mutes(MutesCommand),
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
    Demo {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: local::DemoArgs,
    },
    /// Check the ledger's integrity (online or from a bundle), export bundles, make keys.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script (e.g. `scanledger completions bash > /etc/bash_completion.d/scanledger`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The database flags of a command that uses the database; `None` for the commands
    /// that run without one (scan, rules, completions, audit keygen).
    pub fn db(&self) -> Option<&DbArgs> {
        match self {
            Self::Serve { db, .. }
            | Self::Api { db, .. }
            | Self::Worker { db, .. }
            | Self::Migrate { db }
            | Self::Demo { db, .. } => Some(db),
            Self::Tokens(cmd) => Some(match cmd {
                TokensCommand::Create { db, .. }
                | TokensCommand::List { db }
                | TokensCommand::Revoke { db, .. } => db,
            }),
            Self::Mutes(cmd) => Some(match cmd {
                MutesCommand::Add { db, .. }
                | MutesCommand::List { db, .. }
                | MutesCommand::Remove { db, .. } => db,
            }),
            Self::Projections(cmd) => Some(match cmd {
                ProjectionsCommand::Status { db }
                | ProjectionsCommand::Verify { db, .. }
                | ProjectionsCommand::Rebuild { db, .. } => db,
            }),
            Self::Backfill(BackfillCommand::Openshield { db, .. }) => Some(db),
            Self::Audit(cmd) => match cmd {
                AuditCommand::Verify { db, .. }
                | AuditCommand::Export { db, .. }
                | AuditCommand::Checkpoint { db, .. } => Some(db),
                AuditCommand::Keygen { .. } => None,
            },
            Self::Scan(_) | Self::Rules(_) | Self::Completions { .. } => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash chain, findings digest, checkpoint root and signature.
    /// Exit 0 when all hold; 1 naming the first broken place.
    Verify {
        /// Check this exported bundle offline instead of the database.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Trusted Ed25519 public key (64 hex digits) signatures must verify with
        /// (repeatable). Without it a bundle is checked with the key it carries.
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a self-contained bundle (JSON lines): whole event streams with hashes,
    /// findings, every checkpoint and inclusion proofs.
    Export {
        #[arg(long, group = "scope")]
        scan: Option<uuid::Uuid>,
        #[arg(long, group = "scope")]
        subscription: Option<String>,
        /// Scans with any event at or after this time (RFC 3339).
        #[arg(long, group = "scope")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        output: PathBuf,
        /// Include this signing key's public key in the bundle.
        #[arg(long)]
        signing_key: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Append a checkpoint now (workers do it every --checkpoint-interval).
    Checkpoint {
        #[arg(long, env = "SCANLEDGER_SIGNING_KEY")]
        signing_key: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Make a new Ed25519 signing key (file mode 0600) and print its public key.
    Keygen {
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Import the OpenShield `scans` and `findings` tables (running it twice adds nothing).
    Openshield {
        /// Connection URL of the OpenShield database (read only; never logged). A URL on
        /// the command line is visible to every local user in /proc: prefer the
        /// OPENSHIELD_DATABASE_URL environment variable or --from-file.
        #[arg(
            long = "from",
            env = "OPENSHIELD_DATABASE_URL",
            hide_env_values = true,
            required_unless_present = "from_file",
            conflicts_with = "from_file"
        )]
        from: Option<String>,
        /// A file holding the OpenShield connection URL (first line).
        #[arg(long)]
        from_file: Option<PathBuf>,
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
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's version (stored and built-in), position and lag behind the ledger.
    Status {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replay the ledger into a scratch table and list every row that differs from the
    /// live one; exit code 1 on any difference.
    Verify {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Rebuild from the ledger into a shadow table, catch up, and swap it in while the
    /// service keeps serving.
    Rebuild {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MutesCommand {
    /// Mute one finding (--fingerprint) or a rule on matching resources (--rule and
    /// --resource); prints the mute id.
    Add {
        /// The finding's fingerprint (from findings, reports, or the API).
        #[arg(long, conflicts_with_all = ["rule", "resource"], required_unless_present = "rule")]
        fingerprint: Option<String>,
        /// A rule id, with --resource.
        #[arg(long, requires = "resource")]
        rule: Option<String>,
        /// Resource ids to mute the rule on: `*` matches any run of characters.
        #[arg(long, requires = "rule")]
        resource: Option<String>,
        /// Why: kept forever with the mute.
        #[arg(long)]
        reason: String,
        /// Stop applying after this long (`30d`, `12h`).
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
        /// Who is muting (recorded as `cli:<by>`); default: $USER.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the mutes in effect (--all: every mute ever made).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a mute (appends its removal).
    Remove {
        id: uuid::Uuid,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
        #[command(flatten)]
        db: DbArgs,
    },
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
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (names, roles, dates; never the tokens).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token by name.
    Revoke {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// PostgreSQL connection URL of the runtime login (serve, api, worker, tokens,
    /// backfill, demo), a member of --app-role that owns nothing. When unset, a local
    /// cluster in --pg-dir is used (and started if needed), with its own owner and
    /// runtime logins.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connection URL of the ledger's owner, for `migrate` and `projections` (default:
    /// DATABASE_URL; with neither, the local cluster). Used by serve, api and worker only
    /// to rebuild projections with --rebuild-projections.
    #[arg(long, env = "SCANLEDGER_OWNER_URL", hide_env_values = true)]
    pub owner_url: Option<String>,
    /// Let serve, api, worker, tokens and backfill run as a login that owns the ledger or
    /// is a superuser (then they migrate at start, too). For a throwaway database only:
    /// such a session can disable the ledger's triggers.
    #[arg(long, env = "SCANLEDGER_ALLOW_OWNER_LOGIN")]
    pub allow_owner_login: bool,
    /// Data folder of the local PostgreSQL cluster (used when DATABASE_URL is unset).
    #[arg(long, env = "SCANLEDGER_PG_DIR", default_value = ".scanledger/pg")]
    pub pg_dir: PathBuf,
    /// Also listen on this TCP port on 127.0.0.1 (local cluster; password logins only).
    /// Default: no TCP listener, only a Unix socket in a folder only this account reaches.
    #[arg(long, env = "SCANLEDGER_PG_PORT")]
    pub pg_port: Option<u16>,
    /// NOLOGIN group role that `migrate` grants the runtime privileges to (created when
    /// missing) and that runtime logins must be members of.
    #[arg(long, env = "SCANLEDGER_APP_ROLE", default_value = pg::APP_ROLE, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub app_role: String,
    /// Connections in the pool (a worker: at least 4, plus one each for its heartbeats
    /// and its outcomes).
    #[arg(long, env = "SCANLEDGER_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
    /// At start-up, rebuild a projection whose stored version differs from this build's
    /// (instead of refusing to start).
    #[arg(long, env = "SCANLEDGER_REBUILD_PROJECTIONS")]
    pub rebuild_projections: bool,
}

/// The operations listener of a long-running process.
#[derive(Debug, Args, Default)]
pub struct OpsArgs {
    /// Also serve `/metrics`, `/healthz` and `/readyz` on this address, without a token
    /// (for Prometheus and a supervisor's probes: bind it where only they reach). Port 0
    /// picks a free port; the log line `metrics listening addr=…` names it. Default: off
    /// (`serve` and `api` serve them on the API's address too, `/metrics` with a token).
    #[arg(long, env = "SCANLEDGER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
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
    /// Public key checkpoints are signed with (64 hex digits), served at
    /// /api/audit/public-key (`serve` takes it from the worker's --signing-key).
    #[arg(long, env = "SCANLEDGER_AUDIT_PUBLIC_KEY")]
    pub audit_public_key: Option<String>,
    /// Allow this browser origin (repeatable, or comma-separated). CORS is off by default.
    #[arg(
        long = "cors-origin",
        env = "SCANLEDGER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Accept estate requests (`POST /api/scans` with `management_group_id` or
    /// `tenant: true`): list the subscriptions through Azure with the --azure-* settings
    /// and request one scan for each.
    #[arg(long, env = "SCANLEDGER_ESTATES")]
    pub estates: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where scans read their inventory: fixture:PATH[?delay_ms=N] or azure.
    #[arg(long, env = "SCANLEDGER_SOURCE", default_value = "fixture:demo/tenant")]
    pub source: String,
    #[command(flatten)]
    pub rules: local::RulesDir,
    #[command(flatten)]
    pub azure: AzureArgs,
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
    /// How often this worker's scheduler requests due scheduled scans (one scheduler at a
    /// time across the fleet does; `0s` runs none here).
    #[arg(long, env = "SCANLEDGER_SCHEDULE_TICK", default_value = "10s", value_parser = parse_duration)]
    pub schedule_tick: Duration,
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
    /// Ed25519 key (64 hex digits; `scanledger audit keygen`) that signs ledger checkpoints.
    #[arg(long, env = "SCANLEDGER_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// How often this worker tries to append a ledger checkpoint (one writer at a time
    /// across the fleet); 0s turns it off.
    #[arg(long, env = "SCANLEDGER_CHECKPOINT_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,
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
    pub(super) fn demo(
        listen: &str,
        source: &str,
        rules: &local::RulesDir,
    ) -> anyhow::Result<Self> {
        use clap::ValueEnum;
        let engine = rules.engine.to_possible_value().expect("a named value");
        let rule_engine = engine.get_name();
        let mut argv: Vec<String> = [
            "demo",
            "--listen",
            listen,
            "--no-auth",
            "--source",
            source,
            "--rule-engine",
            rule_engine,
            "--heartbeat",
            "200ms",
        ]
        .map(String::from)
        .into();
        if let Some(dir) = &rules.rules_dir {
            argv.extend(["--rules-dir".into(), dir.display().to_string()]);
        }
        let d = DemoServe::try_parse_from(argv)?;
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

/// A duration flag: `250ms`, `5s`, `1m30s`, `2h` (humantime's syntax), or a bare number
/// of seconds (accepted before humantime was, so kept).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("{s:?}: {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 250ms, 5s or 1m30s: {e}"))
}

impl WorkerArgs {
    /// The scan job: the source and the rule catalogue, both checked before serving;
    /// the Azure source counts its requests into `metrics`.
    pub fn job(&self, metrics: &crate::metrics::Metrics) -> anyhow::Result<RuleScan> {
        let spec: SourceSpec = self
            .source
            .parse()
            .map_err(|e| super::UsageError(format!("--source: {e}")))?;
        let catalogue = Arc::new(self.rules.load()?);
        metrics
            .worker
            .init_rules(catalogue.rules().iter().map(|r| r.meta.id.as_str()));
        let settings = AzureSettings {
            metrics: metrics.azure.clone(),
            ..self.azure.settings()
        };
        let source = spec.open(&settings)?;
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
            schedule_tick: (!self.schedule_tick.is_zero()).then_some(self.schedule_tick),
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

/// Azure connection settings (`scan --source azure`, `worker --source azure`, `serve`).
///
/// The client secret has no flag (command lines are visible to other local users):
/// it comes from `AZURE_CLIENT_SECRET`, or from code that sets `client_secret`.
#[derive(Clone, Debug, clap::Args)]
pub struct AzureArgs {
    /// Azure Resource Manager endpoint (sovereign clouds: see docs/azure.md).
    #[arg(
        id = "azure_arm_endpoint",
        long = "azure-arm-endpoint",
        env = "AZURE_ARM_ENDPOINT",
        default_value = "https://management.azure.com"
    )]
    pub arm_endpoint: String,
    /// Microsoft Entra authority host that issues tokens.
    #[arg(
        id = "azure_authority_host",
        long = "azure-authority-host",
        env = "AZURE_AUTHORITY_HOST",
        default_value = "https://login.microsoftonline.com"
    )]
    pub authority_host: String,
    /// Credential to sign in with.
    #[arg(
        id = "azure_credential",
        long = "azure-credential",
        env = "SCANLEDGER_AZURE_CREDENTIAL",
        value_enum,
        default_value = "auto"
    )]
    pub credential: CredentialKind,
    /// Tenant (directory) id, for client-secret and workload-identity credentials.
    #[arg(
        id = "azure_tenant_id",
        long = "azure-tenant-id",
        env = "AZURE_TENANT_ID"
    )]
    pub tenant_id: Option<String>,
    /// Application (client) id; for managed identity, selects a user-assigned identity.
    #[arg(
        id = "azure_client_id",
        long = "azure-client-id",
        env = "AZURE_CLIENT_ID"
    )]
    pub client_id: Option<String>,
    /// Read from AZURE_CLIENT_SECRET when the source opens; never a flag.
    #[arg(skip)]
    pub client_secret: Option<Secret>,
    /// Kubernetes service account token file, for workload identity.
    #[arg(
        id = "azure_federated_token_file",
        long = "azure-federated-token-file",
        env = "AZURE_FEDERATED_TOKEN_FILE"
    )]
    pub federated_token_file: Option<PathBuf>,
    /// Extra trusted root certificates (PEM), e.g. a TLS-inspecting proxy's; token calls too.
    #[arg(
        id = "azure_ca_file",
        long = "azure-ca-file",
        env = "SCANLEDGER_AZURE_CA_FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// Most ARM and Resource Graph calls in flight at once (per process).
    #[arg(
        id = "azure_concurrency",
        long = "azure-concurrency",
        env = "SCANLEDGER_AZURE_CONCURRENCY",
        default_value_t = 8
    )]
    pub concurrency: usize,
    /// Timeout of one HTTP request, body included (e.g. 30s, 500ms).
    #[arg(id = "azure_timeout", long = "azure-timeout", env = "SCANLEDGER_AZURE_TIMEOUT", default_value = "30s", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Retries of one request after its first try.
    #[arg(
        id = "azure_max_retries",
        long = "azure-max-retries",
        env = "SCANLEDGER_AZURE_MAX_RETRIES",
        default_value_t = 6
    )]
    pub max_retries: u32,
    /// Retries one scan may spend across all its requests.
    #[arg(
        id = "azure_retry_budget",
        long = "azure-retry-budget",
        env = "SCANLEDGER_AZURE_RETRY_BUDGET",
        default_value_t = 100
    )]
    pub retry_budget: u32,
    /// First back-off step without Retry-After; doubles per retry (full jitter, 30s cap).
    #[arg(id = "azure_backoff_base", long = "azure-backoff-base", env = "SCANLEDGER_AZURE_BACKOFF_BASE", default_value = "500ms", value_parser = super::parse_duration)]
    pub backoff_base: Duration,
    /// Resource Graph rows per page (`$top`, at most 1000).
    #[arg(id = "azure_page_size", long = "azure-page-size", env = "SCANLEDGER_AZURE_PAGE_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
}

impl AzureArgs {
    /// The settings the Azure source takes.
    pub fn settings(&self) -> AzureSettings {
        AzureSettings {
            arm_endpoint: self.arm_endpoint.clone(),
            authority_host: self.authority_host.clone(),
            credential: self.credential,
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            federated_token_file: self.federated_token_file.clone(),
            ca_file: self.ca_file.clone(),
            concurrency: self.concurrency,
            timeout: self.timeout,
            max_retries: self.max_retries,
            retry_budget: self.retry_budget,
            backoff_base: self.backoff_base,
            page_size: self.page_size,
            metrics: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_take_compound_units_and_what_was_accepted_before() {
        for (text, want) in [
            ("250ms", Duration::from_millis(250)),
            ("5s", Duration::from_secs(5)),
            ("1m30s", Duration::from_secs(90)),
            ("1m 30s", Duration::from_secs(90)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("0s", Duration::ZERO),
            ("30", Duration::from_secs(30)),
            (" 5s ", Duration::from_secs(5)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "5x", "-1s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn database_flags_show_only_on_the_commands_that_use_them() {
        let mut cli = Cli::command();
        cli.build();
        let has = |path: &[&str]| {
            let mut c = &cli;
            for name in path {
                c = c.find_subcommand(name).expect(name);
            }
            c.get_arguments().any(|a| a.get_id() == "database_url")
        };
        for path in [
            &["scan"][..],
            &["rules", "list"],
            &["rules", "test"],
            &["completions"],
            &["audit", "keygen"],
        ] {
            assert!(!has(path), "{path:?} lists the database flags");
        }
        for path in [
            &["serve"][..],
            &["api"],
            &["worker"],
            &["migrate"],
            &["demo"],
            &["tokens", "create"],
            &["tokens", "list"],
            &["projections", "verify"],
            &["backfill", "openshield"],
            &["audit", "verify"],
            &["audit", "export"],
        ] {
            assert!(has(path), "{path:?} lacks the database flags");
        }
        assert!(
            !cli.get_arguments().any(|a| a.get_id() == "database_url"),
            "no database flag on the root command"
        );
    }

    #[test]
    fn flags_fit_every_command_that_flattens_them() {
        // Azure ids are prefixed `azure_` so they cannot clash with `worker`'s own flags.
        Cli::command().debug_assert();
    }

    #[test]
    fn azure_settings_default_to_the_flag_defaults() {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            azure: AzureArgs,
        }
        // Environment variables would override the defaults under test.
        let overridden = Only::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .any(|v| std::env::var_os(v).is_some());
        if overridden {
            return;
        }
        let parsed = Only::parse_from(["t"]).azure.settings();
        let default = AzureSettings::default();
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    }
}
