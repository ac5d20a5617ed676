//! A local PostgreSQL cluster, started from the installed server binaries.
//!
//! PostgreSQL refuses to run as root, so when this process is root the cluster runs as
//! an unprivileged account (`postgres`) that owns the data folder. The server is a child
//! of a dedicated thread with a parent-death signal, so a crashed service (or a finished
//! test binary) never leaves an orphan postmaster behind.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;

/// The superuser initdb creates; local clusters trust local connections only.
pub const SUPERUSER: &str = "postgres";
/// The account that runs the server when this process is root.
const RUN_AS: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server binaries found: set PG_BIN to the folder holding initdb and \
         postgres, put pg_config on PATH, or install them under /usr/lib/postgresql/<version>/bin \
         (Debian: apt-get install postgresql)"
    )]
    NoBinaries,
    #[error("running as root, but there is no `{0}` account to run PostgreSQL as; create it with `useradd --system {0}`")]
    NoRunAsUser(&'static str),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error(
        "the `{user}` account that runs PostgreSQL cannot reach {path}: a folder above it is \
         closed to other users; choose a --pg-dir (SCANLEDGER_PG_DIR) under an open folder, \
         e.g. /var/tmp/scanledger"
    )]
    Unreachable { user: &'static str, path: PathBuf },
    #[error("PostgreSQL did not accept connections within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Data folder (created and initialised when missing).
    pub data_dir: PathBuf,
    /// TCP port on 127.0.0.1; `None` listens on the Unix socket only.
    pub port: Option<u16>,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// Skip fsync in initdb (test clusters).
    pub fast_init: bool,
}

impl ClusterOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            port: None,
            settings: Vec::new(),
            fast_init: false,
        }
    }
}

pub struct LocalCluster {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    /// Asks the owner thread to stop the server; it answers on the enclosed sender.
    stop_tx: Option<mpsc::Sender<mpsc::Sender<()>>>,
}

/// Find the server binaries: `PG_BIN`, then `pg_config --bindir`, then the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    find_bin_dir_from(std::env::var_os("PG_BIN").map(PathBuf::from))
}

fn find_bin_dir_from(pg_bin: Option<PathBuf>) -> Result<PathBuf, ClusterError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = pg_bin {
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(ClusterError::NoBinaries)
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, d)| d)
        .ok_or(ClusterError::NoBinaries)
}

/// uid/gid to run the server as: `None` when we are not root.
fn run_as() -> Result<Option<(u32, u32)>, ClusterError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new(RUN_AS).expect("static name");
    // SAFETY: getpwnam returns NULL or a pointer into static storage, read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(ClusterError::NoRunAsUser(RUN_AS));
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some((uid, gid)))
}

/// Every folder above the cluster must be traversable by the account running it.
fn check_reachable(dir: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    use std::os::unix::fs::MetadataExt;
    for folder in dir.ancestors() {
        let meta = std::fs::metadata(folder).map_err(io(folder))?;
        let mode = meta.mode();
        let ok = mode & 0o001 != 0
            || (meta.uid() == uid && mode & 0o100 != 0)
            || (meta.gid() == gid && mode & 0o010 != 0);
        if !ok {
            return Err(ClusterError::Unreachable {
                user: RUN_AS,
                path: dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn command(bin: &Path, user: Option<(u32, u32)>, cwd: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd).env("LC_ALL", "C").env_remove("PGDATA");
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid).env("HOME", cwd);
    }
    cmd
}

impl LocalCluster {
    /// Initialise the data folder if needed and start the server; waits until it
    /// accepts connections.
    pub fn start(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin = find_bin_dir()?;
        let user = run_as()?;
        std::fs::create_dir_all(&opts.data_dir).map_err(io(&opts.data_dir))?;
        let data_dir = opts.data_dir.canonicalize().map_err(io(&opts.data_dir))?;
        let root = data_dir.parent().unwrap_or(Path::new("/")).to_path_buf();
        if let Some((uid, gid)) = user {
            check_reachable(&root, uid, gid)?;
        }
        let socket_dir = root.join("run");
        std::fs::create_dir_all(&socket_dir).map_err(io(&socket_dir))?;
        let log_path = root.join("postgres.log");
        if let Some((uid, gid)) = user {
            for p in [&data_dir, &socket_dir] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(io(p))?;
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&data_dir))?;

        if !data_dir.join("PG_VERSION").exists() {
            let mut cmd = command(&bin.join("initdb"), user, &root);
            cmd.arg("-D").arg(&data_dir).args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]);
            if opts.fast_init {
                cmd.arg("--no-sync");
            }
            let out = cmd.output().map_err(io(&bin))?;
            if !out.status.success() {
                return Err(ClusterError::Command {
                    what: "initdb".into(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
        }

        let port = opts.port.unwrap_or(5432);
        // Another process (a `serve` next to this `worker`) may run this cluster already.
        if data_dir.join("postmaster.pid").exists() {
            let attached = Self {
                data_dir: data_dir.clone(),
                socket_dir: socket_dir.clone(),
                port,
                stop_tx: None,
            };
            if attached.is_ready(&bin, user) {
                tracing::info!(data_dir = %data_dir.display(), "using the local PostgreSQL already running");
                return Ok(attached);
            }
        }
        let mut cmd = command(&bin.join("postgres"), user, &root);
        cmd.arg("-D")
            .arg(&data_dir)
            .arg("-k")
            .arg(&socket_dir)
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                &format!(
                    "listen_addresses={}",
                    if opts.port.is_some() { "127.0.0.1" } else { "" }
                ),
            ]);
        for (k, v) in &opts.settings {
            cmd.args(["-c", &format!("{k}={v}")]);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&log_path, Some(uid), Some(gid)).map_err(io(&log_path))?;
        }
        let log_err = log.try_clone().map_err(io(&log_path))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        // SAFETY: prctl is async-signal-safe; it runs in the child after the uid change
        // (which would otherwise clear the death signal).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }

        // The death signal fires when the *thread* that spawned the child ends, so the
        // server is owned by a thread that lives until the cluster is stopped.
        let (started_tx, started_rx) = mpsc::channel::<std::io::Result<u32>>();
        let (stop_tx, stop_rx) = mpsc::channel::<mpsc::Sender<()>>();
        std::thread::Builder::new()
            .name("postgres-owner".into())
            .spawn(move || {
                let mut child: Child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(child.id()));
                // Wait for a stop request (or for the owner to be dropped).
                let ack = stop_rx.recv().ok();
                // SAFETY: signalling our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
                let _ = child.wait();
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
            })
            .map_err(io(&data_dir))?;
        started_rx
            .recv()
            .map_err(|_| ClusterError::Command {
                what: "postgres".into(),
                detail: "owner thread died".into(),
            })?
            .map_err(io(&bin))?;

        let cluster = Self {
            data_dir,
            socket_dir,
            port,
            stop_tx: Some(stop_tx),
        };
        cluster.wait_ready(&bin, user, Duration::from_secs(60), &log_path)?;
        Ok(cluster)
    }

    fn wait_ready(
        &self,
        bin: &Path,
        user: Option<(u32, u32)>,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready(bin, user) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ClusterError::NotReady(timeout, log.to_path_buf()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_ready(&self, bin: &Path, user: Option<(u32, u32)>) -> bool {
        let status = command(&bin.join("pg_isready"), user, &self.socket_dir)
            .arg("-q")
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER])
            .status();
        matches!(status, Ok(s) if s.success())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection options for `database` as the superuser, over the Unix socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(self.port)
            .username(SUPERUSER)
            .database(database)
    }

    /// A libpq-style URL for `database`, usable as `DATABASE_URL` by other processes.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{}/{database}?host={}",
            self.port,
            self.socket_dir.display()
        )
    }

    /// Fast shutdown: disconnect clients, checkpoint, exit.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let (ack_tx, ack_rx) = mpsc::channel();
            if tx.send(ack_tx).is_ok() {
                let _ = ack_rx.recv_timeout(Duration::from_secs(60));
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pg_bin_without_server_binaries_is_a_clear_error() {
        let empty = std::env::temp_dir().join(format!("scanledger-no-pg-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let err = find_bin_dir_from(Some(empty.clone())).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ClusterError::NoBinaries));
        assert!(
            msg.contains("PG_BIN") && msg.contains("initdb") && msg.contains("pg_config"),
            "{msg}"
        );
        std::fs::remove_dir_all(empty).unwrap();
    }
}
