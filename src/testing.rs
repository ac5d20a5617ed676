//! One local cluster per test (or benchmark) process, and a fresh database per test,
//! cloned from a migrated template so each test starts in milliseconds.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sqlx::Connection;
use uuid::Uuid;

use crate::ledger::schema;
use crate::pg::{quote_ident, ClusterOptions, Database, LocalCluster, APP_ROLE};

const TEMPLATE: &str = "scanledger_template";

/// The runtime login of every test database (created once per cluster, with a generated
/// password, a member of [`APP_ROLE`]).
pub const RUNTIME_LOGIN: &str = "scanledger_test_runtime";

pub struct TestCluster {
    cluster: LocalCluster,
    options: ClusterOptions,
    template: tokio::sync::OnceCell<()>,
}

static SHARED: OnceLock<TestCluster> = OnceLock::new();

/// Remove clusters left by earlier test processes that are gone.
fn sweep(root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        // `pg-<pid>` (shared) or `pg-<pid>-<name>` (dedicated).
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pg-"))
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl TestCluster {
    /// The cluster of this process, started under `root` on first use. `durable` keeps
    /// fsync on (benchmarks); tests run without it.
    pub fn shared(root: &Path, durable: bool) -> &'static TestCluster {
        SHARED.get_or_init(|| {
            // `LocalCluster::start` creates (and, as root, checks) the folders.
            sweep(root);
            Self::start_in(root.join(format!("pg-{}", std::process::id())), durable)
        })
    }

    /// A cluster of this test's own under `root`, for a test that stops and starts
    /// PostgreSQL (the shared one serves the other tests of the binary meanwhile). It is
    /// stopped when dropped; its folder is swept by a later test process.
    pub fn dedicated(root: &Path, name: &str) -> TestCluster {
        sweep(root);
        Self::start_in(
            root.join(format!("pg-{}-{name}", std::process::id())),
            false,
        )
    }

    fn start_in(dir: PathBuf, durable: bool) -> TestCluster {
        let mut opts = ClusterOptions::new(dir.join("data"));
        opts.fast_init = !durable;
        opts.settings = vec![
            ("max_connections".into(), "400".into()),
            ("shared_buffers".into(), "256MB".into()),
        ];
        if !durable {
            for (k, v) in [
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
            ] {
                opts.settings.push((k.into(), v.into()));
            }
        }
        let cluster = LocalCluster::start(&opts).expect("start the test PostgreSQL cluster");
        TestCluster {
            cluster,
            options: opts,
            template: tokio::sync::OnceCell::new(),
        }
    }

    /// Stop the server (a fast shutdown: clients are disconnected). Blocks until it is down.
    pub fn stop(&mut self) {
        self.cluster.stop();
    }

    /// Start the server again on the same data folder, socket and passwords; blocks until
    /// it accepts connections.
    pub fn start_again(&mut self) {
        self.cluster =
            LocalCluster::start(&self.options).expect("restart the test PostgreSQL cluster");
    }

    pub fn cluster(&self) -> &LocalCluster {
        &self.cluster
    }

    /// A new, migrated, empty database.
    pub async fn fresh_database(&self) -> anyhow::Result<TestDatabase> {
        self.template
            .get_or_try_init(|| async {
                let mut admin =
                    sqlx::PgConnection::connect_with(&self.cluster.connect_options("postgres"))
                        .await?;
                sqlx::raw_sql(&format!("CREATE DATABASE {TEMPLATE}"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                schema::migrate(&Database::from_options(
                    self.cluster.connect_options(TEMPLATE),
                ))
                .await?;
                // Most tests run many scans of one subscription at once: their deployment
                // allows it. Tests of exclusivity turn it off again.
                let mut owner =
                    sqlx::PgConnection::connect_with(&self.cluster.connect_options(TEMPLATE))
                        .await?;
                sqlx::query("UPDATE ledger_settings SET parallel_per_subscription = true")
                    .execute(&mut owner)
                    .await?;
                owner.close().await?;
                // Roles are cluster-wide; the group role exists once a database is migrated.
                self.cluster
                    .ensure_login(RUNTIME_LOGIN, Some(APP_ROLE))
                    .await?;
                anyhow::Ok(())
            })
            .await?;
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut admin =
            sqlx::PgConnection::connect_with(&self.cluster.connect_options("postgres")).await?;
        sqlx::raw_sql(&format!(
            "CREATE DATABASE {} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY",
            quote_ident(&name)
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        let mut owner =
            sqlx::PgConnection::connect_with(&self.cluster.connect_options(&name)).await?;
        crate::pg::migrate::harden(&mut owner).await?;
        owner.close().await?;
        Ok(TestDatabase {
            url: self.cluster.login_url(&name, RUNTIME_LOGIN)?,
            owner_url: self.cluster.url(&name),
            database: Database::from_options(self.cluster.login_options(&name, RUNTIME_LOGIN)?),
            owner: Database::from_options(self.cluster.connect_options(&name)),
            name,
        })
    }
}

pub struct TestDatabase {
    pub name: String,
    /// `DATABASE_URL` for child processes: the runtime login (the database is already
    /// migrated, so they start without migrating).
    pub url: String,
    /// The owner's (superuser's) URL, e.g. `--owner-url` for child processes.
    pub owner_url: String,
    /// Pools from here log in as the runtime login [`RUNTIME_LOGIN`], a member of
    /// [`APP_ROLE`] that owns nothing.
    pub database: Database,
    /// Pools from here log in as the table owner (superuser).
    pub owner: Database,
}
