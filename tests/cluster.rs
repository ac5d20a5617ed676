//! The local cluster is reachable by its owner only: as root, the launcher refuses paths
//! another account could redirect (checked before anything is created, so these tests
//! start no server); a started cluster asks every login for a password, has no TCP
//! listener unless asked, keeps our environment out of the server, and keeps its
//! passwords and socket private.
//!
//! The refusals only apply to root (the test suite runs as root); as another user those
//! tests only note that they were skipped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use scanledger::pg::{ClusterError, ClusterOptions, LocalCluster};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Set only in the re-executed child of `a_started_cluster_is_reachable_by_its_owner_only`.
const SECRET_VAR: &str = "SCANLEDGER_TEST_SECRET";
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A fresh root-owned 0755 folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("scanledger-cluster-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for d in [dir.parent().unwrap(), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn refusal(data_dir: &Path) -> (PathBuf, String) {
    match LocalCluster::start(&ClusterOptions::new(data_dir)) {
        Err(ClusterError::UnsafePath { path, reason }) => (path, reason),
        Err(e) => panic!("expected an unsafe path refusal, got: {e}"),
        Ok(_) => panic!("the cluster in {} started", data_dir.display()),
    }
}

fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("{test}: skipped, the launcher only checks paths as root");
    }
    !is_root()
}

#[test]
fn a_symlinked_or_hard_linked_log_is_refused_and_its_target_untouched() {
    if skip_unless_root("log link") {
        return;
    }
    let root = scratch("log-link");
    let target = root.join("target.txt");
    std::fs::write(&target, "keep").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = root.join("postgres.log");
    std::os::unix::fs::symlink(&target, &log).unwrap();

    let (path, reason) = refusal(&root.join("data"));
    assert_eq!(path, log);
    assert!(reason.contains("symbolic link"), "{reason}");
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "the target's owner is unchanged"
    );
    assert_eq!(meta.mode() & 0o7777, 0o644);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert!(
        !root.join("data").exists(),
        "nothing is created before the log is checked"
    );

    std::fs::remove_file(&log).unwrap();
    std::fs::hard_link(&target, &log).unwrap();
    let (path, reason) = refusal(&root.join("data"));
    assert_eq!(path, log);
    assert!(reason.contains("hard links"), "{reason}");
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_folder_owned_by_another_account_is_refused_by_name() {
    if skip_unless_root("foreign folder") {
        return;
    }
    let scratch = scratch("foreign");
    let foreign = scratch.join("theirs");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(NOBODY), Some(NOBODY)).unwrap();

    // As an ancestor of the cluster folder, and as the cluster folder itself.
    for data in [foreign.join("pg/data"), foreign.join("data")] {
        let (path, reason) = refusal(&data);
        assert_eq!(path, foreign);
        assert!(
            reason.contains("owned by") && reason.contains("not root"),
            "{reason}"
        );
    }
    assert!(!foreign.join("pg").exists() && !foreign.join("data").exists());
    std::fs::remove_dir_all(scratch).unwrap();
}

#[test]
fn a_writable_folder_is_refused_unless_a_sticky_parent_of_our_own_folder() {
    if skip_unless_root("writable folder") {
        return;
    }
    let scratch = scratch("writable");
    let open = scratch.join("open");
    std::fs::create_dir(&open).unwrap();
    let mode = |m| std::fs::set_permissions(&open, std::fs::Permissions::from_mode(m)).unwrap();

    mode(0o777);
    let (path, reason) = refusal(&open.join("pg/data"));
    assert_eq!(path, open);
    assert!(reason.contains("writable by group or others"), "{reason}");
    mode(0o775);
    assert_eq!(refusal(&open.join("pg/data")).0, open, "group-writable too");

    // Sticky (like /tmp): fine above the cluster folder, not as the cluster folder.
    mode(0o1777);
    let (path, reason) = refusal(&open.join("data"));
    assert_eq!(path, open);
    assert!(reason.contains("writable"), "{reason}");
    // ...and a folder someone else made inside it first is theirs.
    let planted = open.join("pg");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    assert_eq!(refusal(&planted.join("data")).0, planted);
    std::fs::remove_dir_all(scratch).unwrap();
}

#[test]
fn a_symlinked_folder_on_the_way_is_refused() {
    if skip_unless_root("folder link") {
        return;
    }
    let scratch = scratch("folder-link");
    std::fs::create_dir(scratch.join("real")).unwrap();
    let link = scratch.join("link");
    std::os::unix::fs::symlink(scratch.join("real"), &link).unwrap();
    for data in [link.join("pg/data"), link.join("data")] {
        let (path, reason) = refusal(&data);
        assert_eq!(path, link);
        assert!(reason.contains("symbolic link"), "{reason}");
    }
    // The data folder itself.
    let root = scratch.join("root");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(scratch.join("real"), root.join("data")).unwrap();
    let (path, reason) = refusal(&root.join("data"));
    assert_eq!(path, root.join("data"));
    assert!(reason.contains("symbolic link"), "{reason}");
    assert_eq!(std::fs::metadata(scratch.join("real")).unwrap().uid(), 0);
    std::fs::remove_dir_all(scratch).unwrap();
}

#[test]
fn a_secrets_file_that_is_a_link_or_open_to_others_is_refused() {
    if skip_unless_root("secrets file") {
        return;
    }
    let root = scratch("secrets");
    let secrets = root.join("postgres-secrets.json");
    std::fs::write(root.join("elsewhere.json"), r#"{"passwords":{}}"#).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere.json"), &secrets).unwrap();
    let (path, reason) = refusal(&root.join("data"));
    assert_eq!(path, secrets);
    assert!(reason.contains("symbolic link"), "{reason}");

    std::fs::remove_file(&secrets).unwrap();
    std::fs::write(&secrets, r#"{"passwords":{"postgres":"x"}}"#).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (path, reason) = refusal(&root.join("data"));
    assert_eq!(path, secrets);
    assert!(reason.contains("mode 644"), "{reason}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_cluster_initialised_without_passwords_is_refused() {
    let root = scratch("trusting");
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    match LocalCluster::start(&ClusterOptions::new(&data)) {
        Err(e @ ClusterError::Untrusted { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&data.display().to_string()) && msg.contains("trust"),
                "{msg}"
            );
        }
        Err(e) => panic!("expected Untrusted, got: {e}"),
        Ok(_) => panic!("a cluster without passwords started"),
    }
    assert!(!root.join("postgres-secrets.json").exists());
    std::fs::remove_dir_all(root).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn current_user(options: &PgConnectOptions) -> Result<String, sqlx::Error> {
    let mut conn = options.connect().await?;
    let user = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(user)
}

/// The environment variables `pid` was started with.
fn environ(pid: &str) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Re-executes this test binary with a secret in its environment (setting one here
/// would race with the other tests' threads), and checks the cluster there.
#[tokio::test]
async fn a_started_cluster_is_reachable_by_its_owner_only() {
    let Ok(secret) = std::env::var(SECRET_VAR) else {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_started_cluster_is_reachable_by_its_owner_only",
                "--nocapture",
            ])
            .env(SECRET_VAR, "hunter2-not-for-postgres")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    };

    let root = scratch("owner-only");
    let data = root.join("data");
    let mut opts = ClusterOptions::new(&data);
    opts.fast_init = true;
    let cluster = LocalCluster::start(&opts).unwrap();
    let socket = cluster.socket_dir().to_path_buf();

    // Every login needs its password; the superuser's works.
    let anonymous = PgConnectOptions::new_without_pgpass()
        .socket(&socket)
        .port(cluster.port())
        .username("postgres")
        .database("postgres");
    assert!(
        current_user(&anonymous).await.is_err(),
        "no password, no entry"
    );
    assert!(current_user(&anonymous.clone().password("wrong"))
        .await
        .is_err());
    let owner = cluster.connect_options("postgres");
    assert_eq!(current_user(&owner).await.unwrap(), "postgres");
    let from_url: PgConnectOptions = cluster.url("postgres").parse().unwrap();
    assert_eq!(current_user(&from_url).await.unwrap(), "postgres");

    let mut conn = owner.connect().await.unwrap();
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "", "no TCP listener without a port");
    let methods: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT auth_method FROM pg_hba_file_rules")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(methods, ["scram-sha-256"]);

    // The server's environment holds only what we passed.
    let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
    let env = environ(pid_file.lines().next().unwrap().trim());
    assert!(env.iter().any(|v| v == "LC_ALL=C"), "{env:?}");
    assert!(
        !env.iter()
            .any(|v| v.starts_with(SECRET_VAR) || v.contains(&secret)),
        "{env:?}"
    );
    assert!(env.len() <= 4, "{env:?}");

    // Private passwords and socket; the log stays ours.
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    let uid = |p: &Path| std::fs::symlink_metadata(p).unwrap().uid();
    assert_eq!(mode(cluster.secrets_file()), 0o600);
    assert_eq!(mode(&socket), 0o700);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(cluster.log_file()), 0o600);
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert_eq!(uid(cluster.secrets_file()), me);
    assert_eq!(uid(cluster.log_file()), me);
    if is_root() {
        assert_ne!(
            uid(&socket),
            0,
            "the server's account owns its socket folder"
        );
        assert_eq!(uid(&socket), uid(&data));
    }

    // A separate login, idempotently, with its own password.
    sqlx::raw_sql("CREATE ROLE test_group NOLOGIN")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        cluster.login_options("postgres", "runtime"),
        Err(ClusterError::NoSuchLogin(_))
    ));
    assert!(matches!(
        cluster.ensure_login("postgres", None).await,
        Err(ClusterError::BadLoginName(_))
    ));
    cluster
        .ensure_login("runtime", Some("test_group"))
        .await
        .unwrap();
    let first = cluster.login_url("postgres", "runtime").unwrap();
    cluster
        .ensure_login("runtime", Some("test_group"))
        .await
        .unwrap();
    assert_eq!(cluster.login_url("postgres", "runtime").unwrap(), first);
    let runtime = cluster.login_options("postgres", "runtime").unwrap();
    assert_eq!(current_user(&runtime).await.unwrap(), "runtime");
    let by_url: PgConnectOptions = first.parse().unwrap();
    assert_eq!(current_user(&by_url).await.unwrap(), "runtime");
    assert!(
        current_user(&anonymous.clone().username("runtime").password("wrong"))
            .await
            .is_err()
    );
    let (member, superuser): (bool, bool) = sqlx::query_as(
        "SELECT pg_has_role('runtime', 'test_group', 'MEMBER'), rolsuper \
         FROM pg_roles WHERE rolname = 'runtime'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(member && !superuser);
    conn.close().await.unwrap();
    assert_eq!(
        mode(cluster.secrets_file()),
        0o600,
        "still private after a rewrite"
    );

    // A restart reuses the stored passwords.
    drop(cluster);
    let cluster = LocalCluster::start(&opts).unwrap();
    let runtime = cluster.login_options("postgres", "runtime").unwrap();
    assert_eq!(current_user(&runtime).await.unwrap(), "runtime");
    drop(cluster);
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn a_port_adds_a_loopback_listener_that_still_asks_for_a_password() {
    let root = scratch("tcp");
    let mut opts = ClusterOptions::new(root.join("data"));
    opts.fast_init = true;
    opts.port = Some(free_port());
    let cluster = LocalCluster::start(&opts).unwrap();
    let tcp = PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(cluster.port())
        .username("postgres")
        .database("postgres");
    assert!(current_user(&tcp).await.is_err(), "no password, no entry");
    // The superuser's URL, over TCP instead of the socket.
    let url = cluster.url("postgres");
    let tcp_url = url
        .split('?')
        .next()
        .unwrap()
        .replace("@localhost:", "@127.0.0.1:");
    let with_password: PgConnectOptions = tcp_url.parse().unwrap();
    assert!(with_password.get_socket().is_none());
    assert_eq!(current_user(&with_password).await.unwrap(), "postgres");
    let mut conn = with_password.connect().await.unwrap();
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "127.0.0.1");
    conn.close().await.unwrap();
    drop(cluster);
    std::fs::remove_dir_all(root).unwrap();
}
