//! A local PostgreSQL cluster, started from the installed server binaries, that only its
//! owner can reach.
//!
//! PostgreSQL refuses to run as root, so when this process is root the cluster runs as
//! an unprivileged account (`postgres`) that owns the data folder. The server is a child
//! of a dedicated thread with a parent-death signal, so a crashed service (or a finished
//! test binary) never leaves an orphan postmaster behind.
//!
//! Other local accounts must get nothing from it:
//! - every login needs a password (`scram-sha-256`, local and host); the passwords are
//!   generated here and kept in a `0600` file in the cluster folder, owned by the invoking
//!   account;
//! - the server listens on a Unix socket in a `0700` folder, and on TCP (127.0.0.1) only
//!   when a port is asked for;
//! - the server tools run with a cleared environment, so no secret of ours (cloud
//!   credentials) can be read from `/proc/<pid>/environ` by the server's account;
//! - as root, the launcher never follows a symbolic link and refuses folders that another
//!   account could change (see [`LocalCluster::start`]), so a planted link cannot make it
//!   chown or write a file elsewhere.
//!
//! Layout, for a data folder `<root>/<name>`: `<root>/run` (socket), `<root>/postgres.log`,
//! `<root>/postgres-secrets.json` (passwords). One cluster per `<root>`.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;

/// The superuser initdb creates (the owner: migrations run as it).
pub const SUPERUSER: &str = "postgres";
/// The account that runs the server when this process is root.
const RUN_AS: &str = "postgres";
/// Port in the socket file name (`.s.PGSQL.<port>`) when no TCP port is asked for.
pub const DEFAULT_SOCKET_PORT: u16 = 5432;
/// Passwords of the cluster's logins, next to the data folder.
pub const SECRETS_FILE: &str = "postgres-secrets.json";
const LOG_FILE: &str = "postgres.log";
const SOCKET_DIR: &str = "run";

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
        "the `{user}` account that runs PostgreSQL cannot reach {path}: {folder} is closed to \
         other users; choose a --pg-dir (SCANLEDGER_PG_DIR) under a root-owned folder that others \
         may traverse (mode 0755), e.g. /var/lib/scanledger/pg"
    )]
    Unreachable {
        user: &'static str,
        path: PathBuf,
        folder: PathBuf,
    },
    #[error(
        "refusing {path}: it {reason}; another account could redirect what the cluster \
         launcher (running as root) creates there. Choose a --pg-dir (SCANLEDGER_PG_DIR) whose \
         folders are all owned by root and writable by root only, e.g. /var/lib/scanledger/pg"
    )]
    UnsafePath { path: PathBuf, reason: String },
    #[error(
        "the cluster in {data_dir} has no password file {secrets}: it was initialised by an \
         older scanledger with `trust` authentication (any local account could act as its \
         superuser, so its contents cannot be trusted), or its passwords were lost. Move the \
         folder aside or remove it (pg_dump what you need first) to start a fresh cluster"
    )]
    Untrusted { data_dir: PathBuf, secrets: PathBuf },
    #[error("cannot read the password file {path}: {detail}")]
    BadSecrets { path: PathBuf, detail: String },
    #[error("no password is stored for login `{0}`; create it with LocalCluster::ensure_login")]
    NoSuchLogin(String),
    #[error("invalid login name `{0}`: give a non-empty name other than the superuser's")]
    BadLoginName(String),
    #[error("{what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: sqlx::Error,
    },
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
    /// TCP port on 127.0.0.1 (still password-protected); `None` listens on the Unix
    /// socket only.
    pub port: Option<u16>,
    /// Port in the socket file name when `port` is `None`.
    pub socket_port: u16,
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
            socket_port: DEFAULT_SOCKET_PORT,
            settings: Vec::new(),
            fast_init: false,
        }
    }
}

pub struct LocalCluster {
    root: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    secrets_path: PathBuf,
    log_path: PathBuf,
    port: u16,
    /// Login name → password, as in the secrets file.
    passwords: Mutex<BTreeMap<String, String>>,
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

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// uid/gid to run the server as: `None` when we are not root.
fn run_as() -> Result<Option<(u32, u32)>, ClusterError> {
    if euid() != 0 {
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

/// `name (uid N)` for error messages.
fn owner_name(uid: u32) -> String {
    // SAFETY: getpwuid returns NULL or a pointer into static storage, copied at once.
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: pw_name of a non-null passwd entry is a NUL-terminated string.
    let name = unsafe { CStr::from_ptr((*pw).pw_name) }.to_string_lossy();
    format!("{name} (uid {uid})")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn unsafe_path(path: &Path, reason: impl Into<String>) -> ClusterError {
    ClusterError::UnsafePath {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opening with O_NOFOLLOW fails on a symbolic link (ELOOP, or ENOTDIR with
/// O_DIRECTORY): say so.
fn open_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |e| match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if link {
                unsafe_path(path, "is a symbolic link")
            } else if e.raw_os_error() == Some(libc::ENOTDIR) {
                unsafe_path(path, "is not a folder")
            } else {
                io(path)(e)
            }
        }
        _ => io(path)(e),
    }
}

/// A folder opened without following a symbolic link, to fchown/fchmod/flock it.
fn open_dir(path: &Path) -> Result<File, ClusterError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)
        .map_err(open_error(path))
}

/// The cluster folder (`<root>`) and the folders above it, created when missing.
///
/// As root (`strict`), each must be a real folder (not a link) owned by root and not
/// writable by group or others, so no other account can swap what is inside. A folder
/// above `<root>` may be a root-owned sticky folder like `/tmp`: there, others cannot
/// rename or remove the root-owned folder we check (or create) next.
fn prepare_root(root: &Path, strict: bool) -> Result<(), ClusterError> {
    if !strict {
        return std::fs::create_dir_all(root).map_err(io(root));
    }
    let mut prefix = PathBuf::new();
    for component in root.components() {
        prefix.push(component);
        let is_root = prefix.as_path() == root;
        let meta = match std::fs::symlink_metadata(&prefix) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // 0755: the server's account must traverse it. Created exclusively, so
                // a folder someone else made in between is checked like any other.
                match DirBuilder::new().mode(0o755).create(&prefix) {
                    Ok(()) => open_dir(&prefix)?
                        .set_permissions(std::fs::Permissions::from_mode(0o755))
                        .map_err(io(&prefix))?,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io(&prefix)(e)),
                }
                std::fs::symlink_metadata(&prefix).map_err(io(&prefix))?
            }
            Err(e) => return Err(io(&prefix)(e)),
        };
        check_root_folder(&prefix, &meta, is_root)?;
    }
    Ok(())
}

fn check_root_folder(path: &Path, meta: &Metadata, is_root: bool) -> Result<(), ClusterError> {
    if meta.file_type().is_symlink() {
        return Err(unsafe_path(
            path,
            "is a symbolic link (give the real path: links are not followed)",
        ));
    }
    if !meta.is_dir() {
        return Err(unsafe_path(path, "is not a folder"));
    }
    if meta.uid() != 0 {
        return Err(unsafe_path(
            path,
            format!("is owned by {}, not root", owner_name(meta.uid())),
        ));
    }
    let mode = meta.mode();
    if mode & 0o022 != 0 && (is_root || mode & libc::S_ISVTX == 0) {
        return Err(unsafe_path(
            path,
            format!(
                "is writable by group or others (mode {:o}){}",
                mode & 0o7777,
                if is_root { "" } else { " and not sticky" }
            ),
        ));
    }
    Ok(())
}

/// Every folder above the cluster must be traversable by the account running it.
fn check_reachable(dir: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    for folder in dir.ancestors().filter(|f| !f.as_os_str().is_empty()) {
        let meta = std::fs::symlink_metadata(folder).map_err(io(folder))?;
        let mode = meta.mode();
        let ok = mode & 0o001 != 0
            || (meta.uid() == uid && mode & 0o100 != 0)
            || (meta.gid() == gid && mode & 0o010 != 0);
        if !ok {
            return Err(ClusterError::Unreachable {
                user: RUN_AS,
                path: dir.to_path_buf(),
                folder: folder.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// A folder the server owns (data, socket): created 0700, never through a link, and
/// handed to the server's account on the open descriptor.
fn server_folder(path: &Path, server: Option<(u32, u32)>) -> Result<(), ClusterError> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(path)(e)),
    }
    let dir = open_dir(path)?;
    if let Some((uid, gid)) = server {
        let owner = dir.metadata().map_err(io(path))?.uid();
        if owner != uid && owner != 0 {
            return Err(unsafe_path(
                path,
                format!(
                    "is owned by {}, neither root nor {RUN_AS}",
                    owner_name(owner)
                ),
            ));
        }
        std::os::unix::fs::fchown(&dir, Some(uid), Some(gid)).map_err(io(path))?;
    }
    dir.set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(io(path))
}

/// A regular file with no other name, so writing to it writes nowhere else.
fn check_own_file(path: &Path, meta: &Metadata) -> Result<(), ClusterError> {
    if !meta.is_file() {
        return Err(unsafe_path(path, "is not a regular file"));
    }
    if meta.nlink() != 1 {
        return Err(unsafe_path(
            path,
            format!("has {} hard links (expected 1)", meta.nlink()),
        ));
    }
    Ok(())
}

/// The server log, opened by us and handed to the server as stdout/stderr: it stays
/// ours (0600), the server's account never needs to open it. A log from an older
/// launcher owned by the server's account is taken back.
fn open_log(path: &Path, server: Option<(u32, u32)>) -> Result<File, ClusterError> {
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(open_error(path))?;
    let meta = log.metadata().map_err(io(path))?;
    check_own_file(path, &meta)?;
    let me = euid();
    if meta.uid() != me {
        if server.is_none_or(|(uid, _)| meta.uid() != uid) {
            return Err(unsafe_path(
                path,
                format!("is owned by {}", owner_name(meta.uid())),
            ));
        }
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        std::os::unix::fs::fchown(&log, Some(me), Some(gid)).map_err(io(path))?;
    }
    log.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io(path))?;
    Ok(log)
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Secrets {
    /// Login name → password.
    passwords: BTreeMap<String, String>,
}

/// The secrets file, if any: it must be a regular file of ours that nobody else can read.
fn read_secrets(path: &Path) -> Result<Option<Secrets>, ClusterError> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path)(e)),
    };
    let meta = file.metadata().map_err(io(path))?;
    check_own_file(path, &meta)?;
    if meta.uid() != euid() {
        return Err(unsafe_path(
            path,
            format!("is owned by {}, not by us", owner_name(meta.uid())),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_path(
            path,
            format!(
                "is open to group or others (mode {:o}, expected 600)",
                meta.mode() & 0o7777
            ),
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io(path))?;
    let secrets = serde_json::from_str(&text).map_err(|e| ClusterError::BadSecrets {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(Some(secrets))
}

/// Replace the secrets file: a new file (O_EXCL, O_NOFOLLOW, 0600) renamed over the old
/// one, so a reader sees the old or the new file, never half of one.
fn write_secrets(path: &Path, secrets: &Secrets) -> Result<(), ClusterError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&tmp)(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(open_error(&tmp))?;
    let text = serde_json::to_string_pretty(secrets).map_err(|e| ClusterError::BadSecrets {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    file.write_all(text.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Exclusive lock on the cluster folder, held while starting the cluster and while
/// changing the secrets file, so two processes (a `serve` and a `worker`) never both
/// initialise the cluster or lose each other's passwords. Released on drop.
fn lock_folder(root: &Path) -> Result<File, ClusterError> {
    let dir = open_dir(root)?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&dir), libc::LOCK_EX) } == 0 {
            return Ok(dir);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(io(root)(e));
        }
    }
}

/// 32 random bytes from the kernel, as hex (no quoting or URL-encoding trouble).
fn new_password() -> Result<String, ClusterError> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writes at most the remaining length into our buffer.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io(Path::new("getrandom"))(e));
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Percent-encode everything but RFC 3986 unreserved characters (valid in any URL part).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A server tool with a cleared environment: only what PostgreSQL needs, so none of our
/// secrets (cloud credentials, `DATABASE_URL`) reach the server's account.
fn command(bin: &Path, user: Option<(u32, u32)>, cwd: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", cwd);
    if let Some(tz) = std::env::var_os("TZ") {
        cmd.env("TZ", tz);
    }
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// initdb with password authentication everywhere. The superuser's password goes
/// through a pipe (`--pwfile=/dev/stdin`), never on disk or a command line; the pipe is
/// handed to the server's account, which could not reopen a root-owned one.
fn initdb(
    bin: &Path,
    user: Option<(u32, u32)>,
    root: &Path,
    data_dir: &Path,
    password: &str,
    fast: bool,
) -> Result<(), ClusterError> {
    let (reader, mut writer) = std::io::pipe().map_err(io(data_dir))?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::fchown(&reader, Some(uid), Some(gid)).map_err(io(data_dir))?;
    }
    writer
        .write_all(format!("{password}\n").as_bytes())
        .map_err(io(data_dir))?;
    drop(writer);
    let mut cmd = command(&bin.join("initdb"), user, root);
    cmd.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=scram-sha-256",
        "--pwfile=/dev/stdin",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if fast {
        cmd.arg("--no-sync");
    }
    let out = cmd.stdin(reader).output().map_err(io(bin))?;
    if !out.status.success() {
        return Err(ClusterError::Command {
            what: "initdb".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl LocalCluster {
    /// Initialise the data folder if needed and start the server; waits until it
    /// accepts connections. Attaches to the server if another process runs it already.
    ///
    /// As root, refuses (before creating anything in them) a cluster folder or a folder
    /// above it that is a symbolic link, is owned by another account, or is writable by
    /// group or others (a root-owned sticky folder such as `/tmp` is fine above it), and
    /// a log or secrets file that is a link or has other hard links.
    ///
    /// A cluster initialised without a secrets file (older launchers used `trust`
    /// authentication) is refused, not re-secured: any local account could have acted as
    /// its superuser (created roles, changed settings), so nothing in it can be trusted.
    pub fn start(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin = find_bin_dir()?;
        let user = run_as()?;
        // Absolute without resolving links: each component is checked as given.
        let data_dir = std::path::absolute(&opts.data_dir).map_err(io(&opts.data_dir))?;
        let root = match (data_dir.parent(), data_dir.file_name()) {
            (Some(parent), Some(_)) => parent.to_path_buf(),
            _ => return Err(unsafe_path(&data_dir, "names no folder of its own")),
        };
        prepare_root(&root, user.is_some())?;
        if let Some((uid, gid)) = user {
            check_reachable(&root, uid, gid)?;
        }
        let _lock = lock_folder(&root)?;
        let socket_dir = root.join(SOCKET_DIR);
        let log_path = root.join(LOG_FILE);
        let secrets_path = root.join(SECRETS_FILE);
        let log = open_log(&log_path, user)?;
        server_folder(&data_dir, user)?;
        server_folder(&socket_dir, user)?;

        let initialised = std::fs::symlink_metadata(data_dir.join("PG_VERSION")).is_ok();
        let secrets = match read_secrets(&secrets_path)? {
            Some(s) => s,
            None if initialised => {
                return Err(ClusterError::Untrusted {
                    data_dir,
                    secrets: secrets_path,
                })
            }
            None => {
                // Stored before initdb, so a crash in between leaves a password we know.
                let mut s = Secrets::default();
                s.passwords.insert(SUPERUSER.into(), new_password()?);
                write_secrets(&secrets_path, &s)?;
                s
            }
        };
        let Some(superuser_password) = secrets.passwords.get(SUPERUSER) else {
            return Err(ClusterError::BadSecrets {
                path: secrets_path,
                detail: format!("no password for `{SUPERUSER}`"),
            });
        };
        if !initialised {
            initdb(
                &bin,
                user,
                &root,
                &data_dir,
                superuser_password,
                opts.fast_init,
            )?;
        }

        let port = opts.port.unwrap_or(opts.socket_port);
        let mut cluster = Self {
            root: root.clone(),
            data_dir: data_dir.clone(),
            socket_dir: socket_dir.clone(),
            secrets_path,
            log_path: log_path.clone(),
            port,
            passwords: Mutex::new(secrets.passwords),
            stop_tx: None,
        };
        // Another process (a `serve` next to this `worker`) may run this cluster already.
        if data_dir.join("postmaster.pid").exists() && cluster.is_ready(&bin, user) {
            tracing::info!(data_dir = %data_dir.display(), "using the local PostgreSQL already running");
            return Ok(cluster);
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
        cluster.stop_tx = Some(stop_tx);
        cluster.wait_ready(&bin, user, Duration::from_secs(60))?;
        Ok(cluster)
    }

    fn wait_ready(
        &self,
        bin: &Path,
        user: Option<(u32, u32)>,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready(bin, user) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ClusterError::NotReady(timeout, self.log_path.clone()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// pg_isready needs no password: a server asking for one counts as accepting
    /// (exit 0); 1 is "rejecting" (starting up), 2 "no response".
    fn is_ready(&self, bin: &Path, user: Option<(u32, u32)>) -> bool {
        let status = command(&bin.join("pg_isready"), user, &self.socket_dir)
            .arg("-q")
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER])
            .stdin(Stdio::null())
            .status();
        matches!(status, Ok(s) if s.success())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The `0600` file holding the passwords of the cluster's logins.
    pub fn secrets_file(&self) -> &Path {
        &self.secrets_path
    }

    /// The server's log (stdout and stderr).
    pub fn log_file(&self) -> &Path {
        &self.log_path
    }

    /// The TCP port when one was asked for, else the port in the socket file name.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The stored password of `login`; re-reads the secrets file when another process
    /// may have added it.
    fn password(&self, login: &str) -> Result<String, ClusterError> {
        let mut passwords = self.passwords.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = passwords.get(login) {
            return Ok(p.clone());
        }
        if let Some(secrets) = read_secrets(&self.secrets_path)? {
            passwords.extend(secrets.passwords);
        }
        passwords
            .get(login)
            .cloned()
            .ok_or_else(|| ClusterError::NoSuchLogin(login.to_string()))
    }

    /// Connection options for `database` as the superuser (the owner), over the Unix
    /// socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        // The superuser's password was loaded by `start`, which refuses without it.
        let password = self.password(SUPERUSER).unwrap_or_default();
        self.options(database, SUPERUSER, &password)
    }

    /// A libpq-style URL for `database` as the superuser, with its password, usable as
    /// `DATABASE_URL` by other processes.
    pub fn url(&self, database: &str) -> String {
        let password = self.password(SUPERUSER).unwrap_or_default();
        self.url_for(database, SUPERUSER, &password)
    }

    /// Connection options for `database` as `login`, created by [`Self::ensure_login`].
    pub fn login_options(
        &self,
        database: &str,
        login: &str,
    ) -> Result<PgConnectOptions, ClusterError> {
        let password = self.password(login)?;
        Ok(self.options(database, login, &password))
    }

    /// A URL for `database` as `login` (see [`Self::url`]).
    pub fn login_url(&self, database: &str, login: &str) -> Result<String, ClusterError> {
        let password = self.password(login)?;
        Ok(self.url_for(database, login, &password))
    }

    fn options(&self, database: &str, login: &str, password: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(self.port)
            .username(login)
            .password(password)
            .database(database)
    }

    fn url_for(&self, database: &str, login: &str, password: &str) -> String {
        format!(
            "postgres://{}:{}@localhost:{}/{}?host={}",
            percent_encode(login),
            percent_encode(password),
            self.port,
            percent_encode(database),
            percent_encode(&self.socket_dir.to_string_lossy()),
        )
    }

    /// Make `name` an ordinary LOGIN role (no superuser, createdb, createrole,
    /// replication or bypassrls) with its own generated password, stored in the secrets
    /// file, and a member of `member_of` when given (that role must exist). Idempotent:
    /// an existing login keeps its stored password. Then connect with
    /// [`Self::login_options`] or [`Self::login_url`].
    ///
    /// Meant for a runtime login (member of the NOLOGIN group role the migrations
    /// create), so the service does not log in as the owner.
    pub async fn ensure_login(
        &self,
        name: &str,
        member_of: Option<&str>,
    ) -> Result<(), ClusterError> {
        if name.is_empty() || name == SUPERUSER {
            return Err(ClusterError::BadLoginName(name.to_string()));
        }
        // Stored before the role gets it, so the role never has a password nobody knows.
        let (root, path, login) = (
            self.root.clone(),
            self.secrets_path.clone(),
            name.to_string(),
        );
        let password = tokio::task::spawn_blocking(move || {
            let _lock = lock_folder(&root)?;
            let mut secrets = read_secrets(&path)?.unwrap_or_default();
            if let Some(p) = secrets.passwords.get(&login) {
                return Ok(p.clone());
            }
            let p = new_password()?;
            secrets.passwords.insert(login, p.clone());
            write_secrets(&path, &secrets)?;
            Ok::<_, ClusterError>(p)
        })
        .await
        .map_err(|e| ClusterError::Command {
            what: "storing a login password".into(),
            detail: e.to_string(),
        })??;
        self.passwords
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), password.clone());

        let sql = |what: &str| {
            let what = format!("{what} (login {name})");
            move |source| ClusterError::Sql { what, source }
        };
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options("postgres"))
            .await
            .map_err(sql("connecting as the superuser"))?;
        let role = super::quote_ident(name);
        let mut tx = conn.begin().await.map_err(sql("beginning"))?;
        for s in [
            // Concurrent callers for the same name: one creates, the other alters.
            "SELECT pg_advisory_xact_lock(hashtext('scanledger.ensure_login'))",
            // The password is in the statement text: keep it out of the server log,
            // whatever log settings the operator chose (errors included).
            "SET LOCAL log_statement = 'none'",
            "SET LOCAL log_min_duration_statement = -1",
            "SET LOCAL log_min_error_statement = 'panic'",
        ] {
            sqlx::raw_sql(s)
                .execute(&mut *tx)
                .await
                .map_err(sql("preparing"))?;
        }
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(sql("looking up the role"))?;
        let mut statements = vec![format!(
            "{} ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS PASSWORD {}",
            if exists { "ALTER" } else { "CREATE" },
            quote_literal(&password)
        )];
        if let Some(group) = member_of {
            statements.push(format!("GRANT {} TO {role}", super::quote_ident(group)));
        }
        for s in &statements {
            sqlx::raw_sql(s)
                .execute(&mut *tx)
                .await
                .map_err(sql("creating the login"))?;
        }
        tx.commit().await.map_err(sql("committing the login"))?;
        conn.close().await.map_err(sql("closing"))?;
        Ok(())
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

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("abc-._~09"), "abc-._~09");
        assert_eq!(
            percent_encode("/tmp/a b:c@d?e"),
            "%2Ftmp%2Fa%20b%3Ac%40d%3Fe"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn passwords_are_64_hex_digits_and_differ() {
        let (a, b) = (new_password().unwrap(), new_password().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_unreachable_error_suggests_a_root_owned_folder() {
        let msg = ClusterError::Unreachable {
            user: RUN_AS,
            path: "/root/x".into(),
            folder: "/root".into(),
        }
        .to_string();
        assert!(
            msg.contains("/var/lib/scanledger") && !msg.contains("/var/tmp"),
            "{msg}"
        );
        assert!(msg.contains("/root is closed"), "{msg}");
    }
}
