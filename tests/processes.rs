//! Real OS processes: several `scanledger worker` processes sharing one database,
//! `kill -9` mid-scan, SIGTERM, and `scanledger serve` starting its own PostgreSQL.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use scanledger::domain::{Event, EventKind};
use scanledger::projection::ScanState;

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");

fn demo_source(delay_ms: u64) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    format!("fixture:{}?delay_ms={delay_ms}", dir.display())
}

/// A worker process; killed (not waited for) if the test panics first.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }

    /// Wait for exit (bounded); returns the exit status.
    async fn exit_status(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process did not exit"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn worker(url: &str, id: &str, source: &str, extra: &[&str]) -> Proc {
    let child = Command::new(BIN)
        .arg("worker")
        .args(["--source", source, "--worker-id", id])
        .args(extra)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn scanledger worker");
    Proc(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch folder for a command that starts its own PostgreSQL, and that command
/// (`args` first, then `--listen` on `port` and a private `--pg-dir`; no `--pg-port`:
/// the cluster listens on its Unix socket only, as by default).
fn own_postgres(what: &str, args: &[&str], port: u16, stdout: Stdio) -> (PathBuf, Proc) {
    let root =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let child = Command::new(BIN)
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--pg-dir")
        .arg(root.join("pg"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn()
        .unwrap();
    (root, Proc(child))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_worker_processes_share_the_queue_without_double_claims() {
    let env = env().await;
    // Each scan evaluates the whole catalogue on the demo tenant and stores its findings:
    // a few hundred scans keep four processes busy for a few seconds.
    const SCANS: i64 = 600;
    request_scans(&env.ledger, SCANS as usize, 3).await;
    let mut procs: Vec<Proc> = (0..4)
        .map(|i| {
            worker(
                &env.db.url,
                &format!("proc-{i}"),
                &demo_source(0),
                &[
                    "--concurrency",
                    "8",
                    "--db-connections",
                    "4",
                    "--parallel-per-subscription",
                ],
            )
        })
        .collect();
    wait_until(
        "all scans completed by the worker processes",
        // Debug builds on 2 cores take ~2 minutes; the bound only catches a stall.
        Duration::from_secs(360),
        || async { count_status(&env.pool, "completed").await == SCANS },
    )
    .await;
    for p in &procs {
        p.signal(libc::SIGTERM);
    }
    for p in &mut procs {
        assert!(p.exit_status(Duration::from_secs(30)).await.success());
    }
    let claimers = count(
        &env.pool,
        "SELECT count(DISTINCT worker_id) FROM scan_events WHERE kind = 'Claimed'",
    )
    .await;
    assert!(claimers >= 2, "only {claimers} process(es) claimed");
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(*) FROM scan_events WHERE kind = 'Claimed'"
        )
        .await,
        SCANS
    );
    // Every completed scan saw all of the demo tenant's resources and found the same.
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(DISTINCT (summary->>'resources_seen', summary->>'findings')) FROM scan_status"
        )
        .await,
        1
    );
    assert!(
        count(
            &env.pool,
            "SELECT min((summary->>'resources_seen')::bigint) FROM scan_status"
        )
        .await
            > 0
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_scan_is_timed_out_and_the_scan_completes_elsewhere() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let lease = [
        "--lease",
        "1s",
        "--heartbeat",
        "200ms",
        "--reaper-interval",
        "200ms",
        "--retry-base",
        "50ms",
    ];
    let mut doomed = worker(&env.db.url, "doomed", &demo_source(5000), &lease);
    wait_until(
        "the doomed worker heart-beats its attempt",
        Duration::from_secs(20),
        || async {
            let row = status_of(&env.ledger, id).await;
            row.worker_id.as_deref() == Some("doomed") && row.heartbeat_at.is_some()
        },
    )
    .await;
    doomed.signal(libc::SIGKILL);
    assert!(!doomed.exit_status(Duration::from_secs(10)).await.success());

    let _rescuer = worker(&env.db.url, "rescuer", &demo_source(0), &lease);
    wait_until(
        "the scan completed on another worker",
        Duration::from_secs(30),
        || async { status_of(&env.ledger, id).await.status == ScanState::Completed },
    )
    .await;
    let stream = env.ledger.stream(id).await.unwrap();
    let last_beat = stream
        .iter()
        .rfind(|e| e.attempt == 1 && matches!(e.event, Event::Claimed(_) | Event::Heartbeat(_)))
        .unwrap();
    let timed_out = stream
        .iter()
        .find(|e| e.event.kind() == EventKind::TimedOut)
        .expect("attempt 1 timed out");
    assert_eq!(timed_out.attempt, 1);
    // Nothing stays running past lease + reaper interval (plus the rescuer's start-up).
    let stuck_for = timed_out.recorded_at - last_beat.recorded_at;
    assert!(
        stuck_for < chrono::Duration::milliseconds(1000 + 200 + 3000),
        "running for {stuck_for} after the last heartbeat"
    );
    let done = stream.last().unwrap();
    assert_eq!((done.event.kind(), done.attempt), (EventKind::Completed, 2));
    assert_eq!(done.worker_id.as_ref().map(|w| w.as_str()), Some("rescuer"));
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_scan_finish_and_the_process_exit_cleanly() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    // 9 resources x 150 ms: about 1.4 s of work, well inside the grace period.
    let mut w = worker(
        &env.db.url,
        "terminated",
        &demo_source(150),
        &["--heartbeat", "200ms", "--grace", "20s"],
    );
    wait_until("the scan is running", Duration::from_secs(20), || async {
        status_of(&env.ledger, id).await.status == ScanState::Running
    })
    .await;
    w.signal(libc::SIGTERM);
    assert!(w.exit_status(Duration::from_secs(30)).await.success());
    let row = status_of(&env.ledger, id).await;
    assert_eq!((row.status, row.attempt), (ScanState::Completed, 1));
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_its_own_postgres_and_a_triggered_scan_completes() {
    let port = free_port();
    let (root, mut serve) = own_postgres(
        "serve",
        &["serve", "--no-auth", "--source", &demo_source(0)],
        port,
        Stdio::null(),
    );
    scanledger::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_until("serve is ready", Duration::from_secs(120), || async {
        matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    let resp = http
        .post(format!("{base}/api/scans"))
        .json(&serde_json::json!({"subscription_id": SUB}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let last = std::sync::Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
    wait_until("the scan completed", Duration::from_secs(60), || {
        let (http, url, last) = (http.clone(), format!("{base}{location}"), last.clone());
        async move {
            let body: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let done = body["status"] == "completed";
            *last.lock().unwrap() = body;
            done
        }
    })
    .await;
    let summary = last.lock().unwrap()["summary"].clone();
    let by_type: u64 = summary["resources_by_type"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(by_type > 0);
    assert_eq!(summary["resources_seen"], by_type);
    serve.signal(libc::SIGTERM);
    assert!(serve.exit_status(Duration::from_secs(60)).await.success());
    assert!(
        !root.join("pg/postmaster.pid").exists(),
        "the local cluster was stopped on exit"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn no_auth_is_refused_on_a_non_loopback_address() {
    let env = env().await;
    let out = Command::new(BIN)
        .args(["api", "--no-auth", "--listen", "0.0.0.0:0"])
        .env("DATABASE_URL", &env.db.url)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--no-auth") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tokens_cli_prints_a_token_once_and_stores_only_its_hash() {
    let env = env().await;
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &env.db.url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let out = run(&[
        "tokens", "create", "--role", "operator", "--name", "nightly",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("slk_"));
    let list = run(&["tokens", "list"]);
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains("nightly") && listed.contains("operator") && !listed.contains(&token));
    let stored: i64 = count(
        &env.pool,
        "SELECT count(*) FROM api_tokens WHERE name = 'nightly'",
    )
    .await;
    assert_eq!(stored, 1);
    assert!(run(&["tokens", "revoke", "nightly"]).status.success());
    assert!(
        !run(&["tokens", "revoke", "nightly"]).status.success(),
        "revoking twice is an error"
    );
    assert!(!run(&["tokens", "create", "--role", "root", "--name", "x"])
        .status
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_everything_scans_the_demo_tenant_and_prints_findings_and_curl_commands() {
    let port = free_port();
    let (root, mut demo) = own_postgres(
        "demo",
        &["demo", "--exit", "--delay", "5ms"],
        port,
        Stdio::piped(),
    );
    let status = demo.exit_status(Duration::from_secs(180)).await;
    let mut out = String::new();
    use std::io::Read;
    demo.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "demo failed: {out}");
    assert!(out.contains("status: completed"), "{out}");
    assert!(
        out.contains("AZ-NET-001"),
        "the SSH exposure is reported: {out}"
    );
    assert!(
        out.contains(&format!("curl -s http://127.0.0.1:{port}/api/scans/")),
        "{out}"
    );
    assert!(
        out.contains("/events"),
        "the history command is printed: {out}"
    );
    assert!(
        !root.join("pg/postmaster.pid").exists(),
        "the local cluster was stopped on exit"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn scan_cli_exit_status_follows_fail_on_and_sarif_goes_to_the_output_file() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let sarif = dir.join(format!("scan-{}.sarif", std::process::id()));
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["scan", "--source", &demo_source(0), "--subscription", SUB])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "error")
            .output()
            .expect("run scanledger scan")
    };
    // The demo tenant has one critical finding (all ports open to the internet).
    let out = run(&["--fail-on", "critical", "--format", "sarif", "--output"]
        .into_iter()
        .chain([sarif.to_str().unwrap()])
        .collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(!log["runs"][0]["results"].as_array().unwrap().is_empty());
    // Only the HTTPS-only rule: high findings, none critical.
    let out = run(&["--rules", "AZ-STG-002", "--fail-on", "critical"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("AZ-STG-002"));
    let out = run(&["--rules", "AZ-STG-002", "--fail-on", "high"]);
    assert_eq!(out.status.code(), Some(3));
    // A rule filter naming nothing is a usage error.
    let out = run(&["--rules", "AZ-NOPE-000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AZ-NOPE-000"));
    let _ = std::fs::remove_file(sarif);
}

/// `scanledger` with `args`, no database and quiet logs.
fn local(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .expect("run scanledger")
}

#[test]
fn exit_statuses_tell_clean_findings_errors_and_usage_apart() {
    let source = demo_source(0);
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--source", &source, "--subscription", SUB];
        args.extend_from_slice(extra);
        local(&args)
    };
    let code = |out: &std::process::Output| out.status.code();
    // 0: clean (no finding at or above the threshold).
    assert_eq!(
        code(&scan(&["--rules", "AZ-STG-002", "--fail-on", "critical"])),
        Some(0)
    );
    // 3: findings at or above --fail-on.
    let found = scan(&["--fail-on", "high", "--format", "json"]);
    assert_eq!(code(&found), Some(3));
    assert!(String::from_utf8_lossy(&found.stderr).contains("(--fail-on)"));
    // 1: the tool failed (a rule folder that does not exist).
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-such-rules");
    let failed = scan(&[
        "--rules-dir",
        missing.to_str().unwrap(),
        "--fail-on",
        "high",
    ]);
    assert_eq!(
        code(&failed),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no-such-rules"));
    // 2: usage, from clap and from our own checks of flag values alike.
    for (args, says) in [
        (
            vec![
                "scan",
                "--source",
                &source,
                "--subscription",
                SUB,
                "--fail-on",
                "urgent",
            ],
            "urgent",
        ),
        (
            vec!["scan", "--source", &source, "--subscription", "nope"],
            "--subscription",
        ),
        (
            vec!["scan", "--source", "ftp:x", "--subscription", SUB],
            "--source",
        ),
        (vec!["worker", "--lease", "1m30x"], "--lease"),
        (
            vec![
                "scan",
                "--source",
                &source,
                "--subscription",
                SUB,
                "--database-url",
                "x",
            ],
            "--database-url",
        ),
        (vec!["completions", "tcsh"], "tcsh"),
    ] {
        let out = local(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn help_lists_only_a_commands_own_flags_and_completions_cover_every_command() {
    let help = String::from_utf8(local(&["scan", "--help"]).stdout).unwrap();
    assert!(help.contains("--fail-on"), "{help}");
    for db_flag in [
        "--database-url",
        "--pg-dir",
        "--owner-url",
        "--app-role",
        "--db-connections",
    ] {
        assert!(!help.contains(db_flag), "scan --help lists {db_flag}");
    }
    let help = String::from_utf8(local(&["worker", "--help"]).stdout).unwrap();
    assert!(
        help.contains("--database-url") && help.contains("--lease"),
        "{help}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = local(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["scan", "worker", "projections", "fail-on"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
}
