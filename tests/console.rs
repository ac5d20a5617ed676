//! The console in a real browser: headless Chromium, driven over WebDriver
//! (`tests/common/webdriver.rs`), through a real `scanledger serve` process (API and a
//! worker scanning the demo tenant) with authentication on. Needs Debian's `chromium` and
//! `chromium-driver` (`.ci/run` installs them).
//!
//! Screenshots of each view are written to `docs/console/` when `SCANLEDGER_SCREENSHOTS=1`
//! (to the test's scratch folder otherwise):
//! `SCANLEDGER_SCREENSHOTS=1 cargo test --test console`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use scanledger::api::{auth, Role};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");

/// A `scanledger serve` process; killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `scanledger serve` on the test database, scanning the demo tenant (each resource
/// delayed by `delay_ms`, so that a scan takes a few seconds and can be watched).
async fn serve(url: &str, delay_ms: u64, extra: &[&str]) -> (Serve, String) {
    let port = free_port();
    let tenant = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    let child = Command::new(BIN)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--source")
        .arg(format!("fixture:{}?delay_ms={delay_ms}", tenant.display()))
        .args(["--checkpoint-interval", "500ms", "--heartbeat", "1s"])
        .args(extra)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn scanledger serve");
    let base = format!("http://127.0.0.1:{port}");
    scanledger::install_crypto_provider();
    let http = reqwest::Client::new();
    wait_until("serve is ready", Duration::from_secs(60), || async {
        matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    (Serve(child), base)
}

/// Request a scan of the demo subscription through the API and wait until it completed.
async fn completed_scan(base: &str, token: &str) -> String {
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/api/scans"))
        .bearer_auth(token)
        .json(&json!({ "subscription_id": SUB }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["scan_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until("the first scan completed", Duration::from_secs(120), || {
        let (http, url) = (http.clone(), format!("{base}/api/scans/{id}?wait=20"));
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            r.json::<Value>().await.unwrap()["status"] == "completed"
        }
    })
    .await;
    id
}

/// Where screenshots go: `docs/console/` when asked for, the scratch folder otherwise.
fn shot_dir() -> PathBuf {
    if std::env::var_os("SCANLEDGER_SCREENSHOTS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
    }
}

async fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot().await;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: a PNG");
    let dir = shot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_signs_in_reads_a_scan_requests_one_and_watches_it_complete() {
    let env = env().await;
    let token = auth::create_token(&env.pool, "auditor", Role::Operator)
        .await
        .unwrap();
    let (_serve, base) = serve(&env.db.url, 150, &[]).await;
    let first = completed_scan(&base, &token).await;
    let driver = ChromeDriver::start().await;
    let b = driver.session().await;

    // Signing in: the page asks for a token, keeps it in sessionStorage, not in the URL.
    b.goto(&format!("{base}/ui/")).await;
    let input = b.wait_for("#signin:not([hidden]) #token", WAIT).await;
    screenshot(&b, "signin").await;
    b.send_keys(&input, &token).await;
    b.click(&b.wait_for("#signin-form button[type=submit]", WAIT).await)
        .await;

    // Scans: the completed scan is listed, with the counts by status.
    let row = format!("tr[data-scan-id='{first}'] .scan-status");
    b.wait_for_text(&row, "completed", WAIT, |t| t == "completed")
        .await;
    b.wait_for_text(
        "#scan-counts .st-completed strong",
        "one completed",
        WAIT,
        |t| t == "1",
    )
    .await;
    assert!(
        !b.url().await.contains("slk_"),
        "the token is never in a URL"
    );
    let stored = b
        .execute(
            "return sessionStorage.getItem('scanledger.token');",
            json!([]),
        )
        .await;
    assert_eq!(stored, token.as_str());
    screenshot(&b, "scans").await;

    // Scan: its timeline exactly as stored, each event's hash checked, and its findings.
    b.click(
        &b.wait_for(&format!("tr[data-scan-id='{first}'] a.scan-link"), WAIT)
            .await,
    )
    .await;
    let completed_row = "#events tr.event[data-kind='Completed']";
    b.wait_for(completed_row, WAIT).await;
    let http = reqwest::Client::new();
    let stream: Value = http
        .get(format!("{base}/api/scans/{first}/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = b.find_all("#events tr.event").await;
    assert_eq!(rows.len() as u64, stream["count"].as_u64().unwrap());
    let kinds: Vec<String> = {
        let mut k = Vec::new();
        for r in &rows {
            k.push(
                b.text(r)
                    .await
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        k
    };
    let stored_kinds: Vec<&str> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, stored_kinds, "the timeline is the stream, in order");
    for r in &rows {
        let text = b.text(r).await;
        assert!(text.contains("✓ hash"), "every event verifies: {text}");
    }
    // Workers checkpoint every 500 ms here: the Completed event gets its checkpoint mark.
    wait_until("the Completed event is checkpointed", WAIT, || async {
        let verify = b.find_all(&format!("{completed_row} .checkpointed")).await;
        if verify.is_empty() {
            if let Some(again) = b.find_all("#recheck").await.first() {
                b.click(again).await;
            }
            return false;
        }
        true
    })
    .await;
    let summary_findings: Value = http
        .get(format!("{base}/api/scans/{first}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total = summary_findings["summary"]["findings"].as_u64().unwrap();
    assert!(total > 0);
    wait_until("every finding is listed", WAIT, || async {
        b.find_all("#finding-groups tr.finding").await.len() as u64 == total
    })
    .await;
    let critical = b
        .find_all("#finding-groups [data-severity='critical']")
        .await;
    assert_eq!(critical.len(), 1, "findings are grouped by severity");
    b.wait_for_text("#diff-counts", "the first scan's diff", WAIT, |t| {
        t.contains("first completed scan")
    })
    .await;
    b.click(
        &b.wait_for("button.download[data-format='sarif']", WAIT)
            .await,
    )
    .await;
    wait_until("the report was fetched", WAIT, || async {
        b.execute(
            "return !document.querySelector(\"button.download[data-format='sarif']\").disabled;",
            json!([]),
        )
        .await
            == true
    })
    .await;
    assert!(
        b.find_all("#scan-head .error").await.is_empty(),
        "the download failed"
    );
    screenshot(&b, "scan").await;

    // Request a scan from the Scans view and watch it complete, live, without a reload.
    b.click(&b.wait_for("#nav a[data-view='scans']", WAIT).await)
        .await;
    let sub = b
        .wait_for("#request-form input[name=subscription_id]", WAIT)
        .await;
    b.send_keys(&sub, SUB).await;
    b.click(&b.wait_for("#request-form button[type=submit]", WAIT).await)
        .await;
    let live = b
        .wait_for_text("#scan-status", "the new scan's state", WAIT, |t| {
            !t.is_empty()
        })
        .await;
    let url = b.url().await;
    let second = url.rsplit('/').next().unwrap().to_string();
    assert_ne!(second, first, "{url}");
    assert!(
        live == "pending" || live == "running",
        "the page shows the scan before it ends: {live}"
    );
    b.execute("window.stillThisPage = true;", json!([])).await;
    b.wait_for_text("#scan-status", "completed", Duration::from_secs(120), |t| {
        t == "completed"
    })
    .await;
    assert_eq!(
        b.execute("return window.stillThisPage === true;", json!([]))
            .await,
        true,
        "the page followed the scan without reloading"
    );
    b.wait_for("#diff-counts", WAIT).await;
    b.wait_for_text("#diff-counts", "a diff against the first scan", WAIT, |t| {
        t.contains("unchanged")
    })
    .await;

    // Compliance: the controls of the latest completed scan, some failing.
    b.click(&b.wait_for("#nav a[data-view='compliance']", WAIT).await)
        .await;
    b.wait_for("#controls tr.control[data-state='fail']", WAIT)
        .await;
    // Downloads go through a fetch with the token and a blob: nothing the CSP refuses.
    b.click(&b.wait_for("#compliance-csv", WAIT).await).await;
    let controls = b.find_all("#controls tr.control").await;
    assert!(controls.len() > 10, "{} controls", controls.len());
    screenshot(&b, "compliance").await;

    // Subscription: posture over time (a point per completed scan), history, compliance.
    b.goto(&format!("{base}/ui/#/subscription/{SUB}")).await;
    wait_until("two points on the score chart", WAIT, || async {
        b.find_all("#score-chart circle").await.len() == 2
    })
    .await;
    b.wait_for("#sub-compliance tr[data-framework='iso27001']", WAIT)
        .await;
    b.wait_for("#history tbody tr", WAIT).await;
    screenshot(&b, "subscription").await;

    // Operations.
    b.click(&b.wait_for("#nav a[data-view='operations']", WAIT).await)
        .await;
    b.wait_for_text(
        "#operations .st-completed strong",
        "two completed",
        WAIT,
        |t| t == "2",
    )
    .await;
    b.wait_for("#workers tbody tr", WAIT).await;
    screenshot(&b, "operations").await;

    // The marks are computed, not asserted: tamper with the first scan as a superuser
    // with triggers off (one payload, one finding) and the page names both places.
    let mut owner = env.db.owner.owner_connection().await.unwrap();
    sqlx::raw_sql(&format!(
        "SET session_replication_role = replica;
         UPDATE scan_events SET payload = jsonb_set(payload, '{{requested_by}}', '\"mallory\"')
          WHERE scan_id = '{first}' AND version = 1;
         UPDATE findings SET details = '{{\"tampered\": true}}'
          WHERE finding_id = (SELECT min(finding_id) FROM findings WHERE scan_id = '{first}');"
    ))
    .execute(&mut owner)
    .await
    .unwrap();
    b.goto(&format!("{base}/ui/#/scan/{first}")).await;
    b.wait_for_text(
        "#events tr.event[data-version='1'] .verify",
        "the edited Requested is broken",
        WAIT,
        |t| t.contains("✗ broken") && t.contains("contents"),
    )
    .await;
    b.wait_for_text(
        completed_row,
        "the Completed's findings digest is broken",
        WAIT,
        |t| t.contains("✗ broken") && t.contains("findings digest"),
    )
    .await;
    let intact = b
        .find_all("#events tr.event[data-kind='Claimed'] .verify .verified")
        .await;
    assert_eq!(intact.len(), 1, "the untouched events still verify");

    // Nothing was refused by the Content-Security-Policy, nothing failed but the first
    // unauthenticated call that asked for the token.
    let violations = b.execute("return window.cspViolations;", json!([])).await;
    assert_eq!(violations, json!([]), "CSP violations");
    let severe: Vec<String> = b
        .severe_logs()
        .await
        .into_iter()
        .filter(|m| !m.contains("401"))
        .collect();
    assert!(severe.is_empty(), "errors in the page: {severe:#?}");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_the_console_asks_for_no_token() {
    let env = env().await;
    let (_serve, base) = serve(&env.db.url, 0, &["--no-auth"]).await;
    let driver = ChromeDriver::start().await;
    let b = driver.session().await;
    b.goto(&format!("{base}/ui")).await;
    b.wait_for_text("#scan-counts .st-pending strong", "the counts", WAIT, |t| {
        t == "0"
    })
    .await;
    let hidden = b
        .execute(
            "return document.getElementById('signin').hidden;",
            json!([]),
        )
        .await;
    assert_eq!(hidden, true, "no sign-in");
    // A scan requested from the page runs.
    let sub = b
        .wait_for("#request-form input[name=subscription_id]", WAIT)
        .await;
    b.send_keys(&sub, SUB).await;
    b.click(&b.wait_for("#request-form button[type=submit]", WAIT).await)
        .await;
    b.wait_for_text("#scan-status", "completed", Duration::from_secs(120), |t| {
        t == "completed"
    })
    .await;
    let by: Value = b
        .execute(
            "return document.querySelector('#scan-head').textContent;",
            json!([]),
        )
        .await;
    assert!(by.as_str().unwrap().contains("by local"), "{by}");
    b.quit().await;
}
