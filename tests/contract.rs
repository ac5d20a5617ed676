//! The OpenAPI 3.1 contract: the document is sound, and live responses of every route
//! match the schemas it declares for them.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use scanledger::api;
use scanledger::domain::Severity;
use serde_json::{json, Value};

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

fn pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

#[test]
fn the_document_is_sound() {
    let doc = api::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        assert!(pointer(&doc, r).is_some(), "dangling $ref {r}");
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut wrapped = schema.clone();
        if let Some(o) = wrapped.as_object_mut() {
            o.insert("components".into(), doc["components"].clone());
        }
        assert!(
            jsonschema::meta::is_valid(&wrapped),
            "component {name} is not a valid JSON Schema"
        );
        jsonschema::draft202012::new(&wrapped).unwrap_or_else(|e| panic!("component {name}: {e}"));
    }
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let served: BTreeSet<String> = [
        "/api/scans",
        "/api/scans/{id}",
        "/api/scans/{id}/cancel",
        "/api/scans/{id}/events",
        "/api/scans/{id}/findings",
        "/api/scans/{id}/report",
        "/api/findings",
        "/api/events",
        "/api/events/stream",
        "/api/tokens",
        "/api/tokens/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/api/scans/{id}/diff",
        "/api/subscriptions/{id}/findings/history",
        "/api/scans/{id}/proof",
        "/api/audit/public-key",
        "/api/mutes",
        "/api/mutes/{id}",
        "/api/schedules",
        "/api/schedules/{id}",
        "/api/estates/{id}",
        "/api/subscriptions",
        "/api/subscriptions/{id}/posture",
        "/api/subscriptions/{id}/compliance",
        "/api/operations",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        documented, served,
        "every route is documented, and nothing else"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: no responses"));
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
        }
    }
    // Trigger and the OpenShield alias share one body contract.
    assert!(doc["paths"]["/api/scans"]["post"]["requestBody"].is_object());
}

/// Checks live responses against the document and remembers what it covered.
struct Contract {
    doc: Value,
    covered: BTreeSet<(String, String)>,
}

impl Contract {
    /// Validate `body` as the response of `method route` with `status`.
    fn check(&mut self, method: &str, route: &str, status: u16, content_type: &str, body: &Value) {
        let op = &self.doc["paths"][route][method];
        assert!(op.is_object(), "{method} {route} is not documented");
        let resp = &op["responses"][status.to_string()];
        assert!(
            resp.is_object(),
            "{method} {route} {status} is not documented"
        );
        let ct = content_type.split(';').next().unwrap().trim();
        let schema = &resp["content"][ct]["schema"];
        assert!(
            schema.is_object(),
            "{method} {route} {status}: {ct} not documented"
        );
        let mut wrapped = schema.clone();
        wrapped
            .as_object_mut()
            .unwrap()
            .insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::new(&wrapped).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {route} {status} does not match the contract: {errors:#?}\n{body:#}"
        );
        self.covered.insert((method.to_string(), route.to_string()));
    }

    fn check_empty(&mut self, method: &str, route: &str, status: u16) {
        let resp = &self.doc["paths"][route][method]["responses"][status.to_string()];
        assert!(
            resp.is_object(),
            "{method} {route} {status} is not documented"
        );
        assert!(
            resp.get("content").is_none(),
            "{method} {route} {status} documents a body"
        );
        self.covered.insert((method.to_string(), route.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_responses_of_every_route_match_the_document() {
    let app = spawn_app_with(scanledger::api::ApiConfig {
        audit_public_key: Some(scanledger::ledger::audit::Signer::from_seed(&[3; 32]).public_key()),
        ..Default::default()
    })
    .await;
    let (base, http) = (&app.base, &app.http);
    let (admin, reader) = (&app.admin, &app.reader);
    let mut c = Contract {
        doc: api::openapi::document(),
        covered: BTreeSet::new(),
    };
    let call = |method: reqwest::Method, path: String, token: Option<&str>, body: Option<Value>| {
        let mut req = http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let text = resp.text().await.unwrap();
            let body = if ct.contains("json") && !ct.contains("ndjson") {
                serde_json::from_str(&text).unwrap()
            } else {
                Value::String(text)
            };
            (status, ct, body)
        }
    };
    use reqwest::Method as M;
    let a = Some(admin.as_str());

    // Trigger, with and without an idempotency key.
    let (s, ct, body) = call(
        M::POST,
        "/api/scans".into(),
        a,
        Some(json!({"subscription_id": SUB})),
    )
    .await;
    c.check("post", "/api/scans", s, &ct, &body);
    let id = body["scan_id"].as_str().unwrap().to_string();
    for (status_wanted, b) in [
        (400, json!({"subscription_id": "x"})),
        (202, json!({"subscription_id": SUB, "rules": ["storage"]})),
    ] {
        let (s, ct, body) = call(M::POST, "/api/scans/trigger".into(), a, Some(b)).await;
        assert_eq!(s, status_wanted);
        // The alias serves the same contract as /api/scans.
        c.check("post", "/api/scans", s, &ct, &body);
    }
    let (s, ct, body) = call(
        M::POST,
        "/api/scans".into(),
        Some(reader),
        Some(json!({"subscription_id": SUB})),
    )
    .await;
    assert_eq!(s, 403);
    c.check("post", "/api/scans", s, &ct, &body);
    let (s, ct, body) = call(
        M::POST,
        "/api/scans".into(),
        None,
        Some(json!({"subscription_id": SUB})),
    )
    .await;
    assert_eq!(s, 401);
    c.check("post", "/api/scans", s, &ct, &body);

    // Run the first scan to completion with findings, so every field has a value.
    let scan_id: scanledger::domain::ScanId = serde_json::from_value(json!(id)).unwrap();
    run_scripted(
        &app.env.ledger,
        &Arc::new(ScriptedJob::new(Behaviour::Succeed)),
        scan_id,
        [Behaviour::Find(vec![finding(
            "storage-https-only",
            "st1",
            Severity::High,
            "storage",
        )])],
        "contract",
    )
    .await;

    for (path, route) in [
        (format!("/api/scans/{id}"), "/api/scans/{id}"),
        ("/api/scans".to_string(), "/api/scans"),
        (format!("/api/scans/{id}/events"), "/api/scans/{id}/events"),
        (
            format!("/api/scans/{id}/findings"),
            "/api/scans/{id}/findings",
        ),
        ("/api/findings".to_string(), "/api/findings"),
        (
            format!("/api/scans/{id}/report?format=sarif"),
            "/api/scans/{id}/report",
        ),
        (
            format!("/api/scans/{id}/report?format=csv"),
            "/api/scans/{id}/report",
        ),
        (format!("/api/scans/{id}/diff"), "/api/scans/{id}/diff"),
        (
            format!("/api/subscriptions/{SUB}/findings/history"),
            "/api/subscriptions/{id}/findings/history",
        ),
        ("/api/events?limit=3".to_string(), "/api/events"),
        ("/api/tokens".to_string(), "/api/tokens"),
        ("/api/openapi.json".to_string(), "/api/openapi.json"),
        ("/metrics".to_string(), "/metrics"),
        ("/healthz".to_string(), "/healthz"),
        ("/readyz".to_string(), "/readyz"),
        (format!("/api/scans/{id}/proof"), "/api/scans/{id}/proof"),
        ("/api/audit/public-key".to_string(), "/api/audit/public-key"),
        ("/api/subscriptions".to_string(), "/api/subscriptions"),
        (
            format!("/api/subscriptions/{SUB}/posture"),
            "/api/subscriptions/{id}/posture",
        ),
        (
            format!("/api/subscriptions/{SUB}/compliance"),
            "/api/subscriptions/{id}/compliance",
        ),
        (
            format!("/api/subscriptions/{SUB}/compliance?framework=nist_csf&format=csv"),
            "/api/subscriptions/{id}/compliance",
        ),
        ("/api/operations".to_string(), "/api/operations"),
    ] {
        let (s, ct, body) = call(M::GET, path.clone(), a, None).await;
        assert_eq!(s, 200, "{path}: {body}");
        c.check("get", route, s, &ct, &body);
    }
    // The proof is a bundle: JSON lines an offline verifier accepts.
    let proof = call(M::GET, format!("/api/scans/{id}/proof"), a, None)
        .await
        .2;
    let (_, broken) =
        scanledger::domain::integrity::verify_bundle(proof.as_str().unwrap(), &[]).unwrap();
    assert!(broken.is_empty(), "{broken:#?}");
    let scan = call(M::GET, format!("/api/scans/{id}"), a, None).await.2;
    assert_eq!(scan["status"], "completed");
    for (path, route, status) in [
        ("/api/scans/nope".to_string(), "/api/scans/{id}", 400),
        (
            format!("/api/scans/{}", uuid::Uuid::new_v4()),
            "/api/scans/{id}",
            404,
        ),
        ("/api/scans?limit=9999".to_string(), "/api/scans", 400),
        (
            format!("/api/scans/{}/events", uuid::Uuid::new_v4()),
            "/api/scans/{id}/events",
            404,
        ),
        (
            format!("/api/scans/{}/findings", uuid::Uuid::new_v4()),
            "/api/scans/{id}/findings",
            404,
        ),
        (
            "/api/findings?severity=urgent".to_string(),
            "/api/findings",
            400,
        ),
        ("/api/events?after=x".to_string(), "/api/events", 400),
        ("/api/scans/x/diff".to_string(), "/api/scans/{id}/diff", 400),
        (
            "/api/scans/x/proof".to_string(),
            "/api/scans/{id}/proof",
            400,
        ),
        (
            format!("/api/scans/{}/proof", uuid::Uuid::new_v4()),
            "/api/scans/{id}/proof",
            404,
        ),
        (
            "/api/subscriptions/x/findings/history".to_string(),
            "/api/subscriptions/{id}/findings/history",
            400,
        ),
        (
            "/api/subscriptions?cursor=x".to_string(),
            "/api/subscriptions",
            400,
        ),
        (
            "/api/subscriptions/x/posture".to_string(),
            "/api/subscriptions/{id}/posture",
            400,
        ),
        (
            format!("/api/subscriptions/{}/posture", uuid::Uuid::new_v4()),
            "/api/subscriptions/{id}/posture",
            404,
        ),
        (
            format!("/api/subscriptions/{SUB}/compliance?framework=pci"),
            "/api/subscriptions/{id}/compliance",
            400,
        ),
        (
            format!("/api/subscriptions/{}/compliance", uuid::Uuid::new_v4()),
            "/api/subscriptions/{id}/compliance",
            404,
        ),
        (
            "/api/operations?window=0".to_string(),
            "/api/operations",
            400,
        ),
    ] {
        let (s, ct, body) = call(M::GET, path.clone(), a, None).await;
        assert_eq!(s, status, "{path}");
        c.check("get", route, s, &ct, &body);
    }
    let (s, ct, body) = call(M::GET, "/api/tokens".into(), Some(reader), None).await;
    assert_eq!(s, 403);
    c.check("get", "/api/tokens", s, &ct, &body);

    // 304 has no body.
    let r = http
        .get(format!("{base}/api/scans/{id}"))
        .bearer_auth(admin)
        .header("if-none-match", format!("\"{}\"", scan["version"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    c.check_empty("get", "/api/scans/{id}", 304);

    // Cancel: a live scan (200), a finished one (409).
    let live = call(
        M::POST,
        "/api/scans".into(),
        a,
        Some(json!({"subscription_id": SUB})),
    )
    .await
    .2;
    let live_id = live["scan_id"].as_str().unwrap();
    for (sid, status) in [(live_id.to_string(), 200), (id.clone(), 409)] {
        let (s, ct, body) = call(
            M::POST,
            format!("/api/scans/{sid}/cancel"),
            a,
            Some(json!({"reason": "contract"})),
        )
        .await;
        assert_eq!(s, status);
        c.check("post", "/api/scans/{id}/cancel", s, &ct, &body);
    }

    // Tokens: create (201, 409), revoke (204, 404).
    for status in [201, 409] {
        let (s, ct, body) = call(
            M::POST,
            "/api/tokens".into(),
            a,
            Some(json!({"name": "temp", "role": "reader"})),
        )
        .await;
        assert_eq!(s, status);
        c.check("post", "/api/tokens", s, &ct, &body);
    }
    let r = http
        .delete(format!("{base}/api/tokens/temp"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    c.check_empty("delete", "/api/tokens/{name}", 204);
    let (s, ct, body) = call(M::DELETE, "/api/tokens/temp".into(), a, None).await;
    assert_eq!(s, 404);
    c.check("delete", "/api/tokens/{name}", s, &ct, &body);

    // Estates: off in this server (503); unknown (404) and malformed (400) ids.
    let (s, ct, body) = call(
        M::POST,
        "/api/scans".into(),
        a,
        Some(json!({"tenant": true})),
    )
    .await;
    assert_eq!(s, 503);
    c.check("post", "/api/scans", s, &ct, &body);
    for (path, status) in [
        (format!("/api/estates/{}", uuid::Uuid::new_v4()), 404),
        ("/api/estates/x".to_string(), 400),
    ] {
        let (s, ct, body) = call(M::GET, path, a, None).await;
        assert_eq!(s, status);
        c.check("get", "/api/estates/{id}", s, &ct, &body);
    }

    // Mutes: create (201, 400), list (200), remove (200, 409, 404).
    let (s, ct, mute) = call(
        M::POST,
        "/api/mutes".into(),
        a,
        Some(json!({"rule_id": "AZ-NET-001", "resource_pattern": "*", "reason": "contract"})),
    )
    .await;
    assert_eq!(s, 201, "{mute}");
    c.check("post", "/api/mutes", s, &ct, &mute);
    let (s, ct, body) = call(
        M::POST,
        "/api/mutes".into(),
        a,
        Some(json!({"reason": "r"})),
    )
    .await;
    assert_eq!(s, 400);
    c.check("post", "/api/mutes", s, &ct, &body);
    let (s, ct, body) = call(M::GET, "/api/mutes?all=true".into(), a, None).await;
    assert_eq!(s, 200);
    c.check("get", "/api/mutes", s, &ct, &body);
    let mute_path = format!("/api/mutes/{}", mute["mute_id"].as_str().unwrap());
    for status in [200, 409] {
        let (s, ct, body) = call(M::DELETE, mute_path.clone(), a, None).await;
        assert_eq!(s, status);
        c.check("delete", "/api/mutes/{id}", s, &ct, &body);
    }
    let (s, ct, body) = call(
        M::DELETE,
        format!("/api/mutes/{}", uuid::Uuid::new_v4()),
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
    c.check("delete", "/api/mutes/{id}", s, &ct, &body);

    // Schedules: create (201, 400), list (200), remove (204, 409).
    let (s, ct, schedule) = call(
        M::POST,
        "/api/schedules".into(),
        a,
        Some(json!({"subscription_id": SUB, "cron": "0 2 * * *"})),
    )
    .await;
    assert_eq!(s, 201, "{schedule}");
    c.check("post", "/api/schedules", s, &ct, &schedule);
    let (s, ct, body) = call(
        M::POST,
        "/api/schedules".into(),
        a,
        Some(json!({"subscription_id": SUB, "every": "1s"})),
    )
    .await;
    assert_eq!(s, 422, "of the documented shape, but under a minute");
    c.check("post", "/api/schedules", s, &ct, &body);
    let (s, ct, body) = call(M::GET, "/api/schedules".into(), a, None).await;
    assert_eq!(s, 200);
    c.check("get", "/api/schedules", s, &ct, &body);
    let schedule_path = format!(
        "/api/schedules/{}",
        schedule["schedule_id"].as_str().unwrap()
    );
    let r = http
        .delete(format!("{base}{schedule_path}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    c.check_empty("delete", "/api/schedules/{id}", 204);
    let (s, ct, body) = call(M::DELETE, schedule_path, a, None).await;
    assert_eq!(s, 409);
    c.check("delete", "/api/schedules/{id}", s, &ct, &body);

    // The event stream: its content type, and each data frame is an EventView.
    let resp = http
        .get(format!("{base}/api/events/stream"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "text/event-stream");
    let frame = SseReader::new(resp).next_frame().await;
    // As OpenAPI models an event stream: each event an object of its fields (the
    // document's schema is per event), `data` a string holding the EventView.
    let mut fields = serde_json::Map::new();
    for line in frame.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.to_string(), Value::String(v.trim_start().to_string()));
        }
    }
    c.check(
        "get",
        "/api/events/stream",
        200,
        &ct,
        &Value::Object(fields.clone()),
    );
    let data = frame_data(&frame).unwrap();
    assert_eq!(fields["data"], data);
    let event: Value = serde_json::from_str(data).unwrap();
    let stream = &c.doc["paths"]["/api/events/stream"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"]["schema"];
    let mut ev_schema = stream["properties"]["data"]["contentSchema"].clone();
    assert_eq!(ev_schema["$ref"], "#/components/schemas/EventView");
    ev_schema["components"] = c.doc["components"].clone();
    assert!(
        jsonschema::draft202012::new(&ev_schema)
            .unwrap()
            .is_valid(&event),
        "{event}"
    );
    assert_eq!(fields["event"], event["kind"], "`event` names the kind");
    assert_eq!(fields["id"], event["cursor"], "`id` is the event's cursor");

    // Every documented operation was exercised.
    let mut documented = BTreeSet::new();
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let missing: Vec<_> = documented.difference(&c.covered).collect();
    assert!(
        missing.is_empty(),
        "operations not exercised against the contract: {missing:?}"
    );
}

#[test]
fn the_contract_rejects_a_body_that_breaks_it() {
    // Guards the checker itself: a wrong body must fail validation.
    let doc = api::openapi::document();
    let mut schema = doc["paths"]["/api/scans/{id}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"]
        .clone();
    schema["components"] = doc["components"].clone();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    assert!(
        !v.is_valid(&json!({"scan_id": "x"})),
        "missing required fields must fail"
    );
    let problem_schema =
        json!({"$ref": "#/components/schemas/Problem", "components": doc["components"]});
    let v = jsonschema::draft202012::new(&problem_schema).unwrap();
    assert!(!v.is_valid(&json!({"status": "four hundred"})));
    assert!(v.is_valid(
        &json!({"type": "about:blank", "title": "Bad Request", "status": 400, "code": "bad_request",
                                "detail": "d", "correlation_id": uuid::Uuid::new_v4()})
    ));
}

/// The schemathesis release the contract is checked with (PyPI).
const SCHEMATHESIS: &str = "4.32.5";
/// Examples per operation and phase: the whole run stays near a minute on two cores.
const FUZZ_EXAMPLES: &str = "40";

/// `schemathesis`, pinned: from `target/tmp/schemathesis-<version>` (a virtualenv),
/// installed there with pip on first use. A machine without python3 fails the test: the
/// contract is never skipped silently.
fn schemathesis() -> std::path::PathBuf {
    use std::process::Command;
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("schemathesis-{SCHEMATHESIS}"));
    let bin = venv.join("bin/schemathesis");
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS));
    if installed {
        return bin;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 is needed for the contract fuzzer (.ci/run installs it)");
    assert!(status.success(), "python3 -m venv {}", venv.display());
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={SCHEMATHESIS}"))
        .status()
        .expect("pip in the virtualenv");
    assert!(status.success(), "pip install schemathesis=={SCHEMATHESIS}");
    bin
}

/// A property-based fuzzer (schemathesis, every check: server errors, status codes,
/// content types, headers and bodies against their schemas, schema-valid requests
/// accepted and invalid ones refused, auth enforced, SSE events against their schema,
/// unsupported methods, stateful sequences) against a running `scanledger serve`, as an
/// operator: 0 failures. The seed is fixed so a run is reproducible; set
/// `SCANLEDGER_FUZZ_SEED` to explore others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_fuzzer_finds_no_failure() {
    let fuzzer = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let env = env().await;
    let token = api::auth::create_token(&env.pool, "contract-fuzzer", api::Role::Operator)
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tenant = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    let mut serve = OpsProc::spawn(
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--source",
            &format!("fixture:{}", tenant.display()),
            "--checkpoint-interval",
            "0s",
        ],
        &[("DATABASE_URL", env.db.url.as_str())],
    )
    .await;
    // A scan in the ledger, so the event stream has events to send.
    let scan = request_scans(&env.ledger, 1, 3).await[0];
    let base = format!("http://127.0.0.1:{port}");
    wait_until("serve answers", std::time::Duration::from_secs(60), || {
        let url = format!("{base}/healthz");
        let http = serve.http.clone();
        async move { http.get(url).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    wait_until(
        "the scan completes",
        std::time::Duration::from_secs(120),
        || {
            let ledger = env.ledger.clone();
            async move { status_of(&ledger, scan).await.status.is_terminal() }
        },
    )
    .await;
    let seed = std::env::var("SCANLEDGER_FUZZ_SEED").unwrap_or_else(|_| "20261130".into());
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml");
    // Its cache (found crashes, replays) goes under target/, not into the work tree.
    let out = tokio::process::Command::new(&fuzzer)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{base}/api/openapi.json"))
        .args([
            "--checks",
            "all",
            "--max-examples",
            FUZZ_EXAMPLES,
            "--seed",
            &seed,
        ])
        .args(["--no-color", "--suppress-health-check", "all"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .output()
        .await
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = report.lines().rev().take(12).collect();
    println!(
        "{}",
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found failures (seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed"), "no test case ran:\n{report}");
    assert!(serve.terminate().await.success());
}
