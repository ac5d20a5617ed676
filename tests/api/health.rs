//! Service-wide behaviour: health and readiness, metrics, request ids, CORS, and the
//! time budget of every request.

use std::time::Duration;

use crate::common::*;
use crate::problem;
use scanledger::api::ApiConfig;
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    app.env.pool.close().await;
    problem(app.http.get(app.url("/readyz")).send().await.unwrap(), 503).await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_request_ids_and_cors() {
    let app = spawn_app_with(ApiConfig {
        cors_origins: vec!["https://dash.example".into()],
        ..ApiConfig::default()
    })
    .await;
    app.trigger(SUB).await;
    problem(app.get("/api/scans/nope").await, 400).await;
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    for needle in [
        "scanledger_http_requests_total{method=\"POST\",route=\"/api/scans\",status=\"202\"} 1",
        "scanledger_http_requests_total{method=\"GET\",route=\"/api/scans/{id}\",status=\"400\"} 1",
        "scanledger_http_request_duration_seconds_bucket{route=\"/api/scans\",le=\"+Inf\"} 1",
        "scanledger_scans{status=\"pending\"} 1",
        "scanledger_queue_depth 1",
        "scanledger_oldest_pending_seconds",
        "scanledger_claims_total 0",
        "scanledger_lease_expiries_total 0",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/scans"))
        .header("origin", "https://dash.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let other = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let plain = spawn_app().await;
    let r = plain
        .http
        .get(plain.url("/healthz"))
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    assert!(
        !r.headers().contains_key("access-control-allow-origin"),
        "CORS is off by default"
    );
}

#[tokio::test]
async fn requests_over_the_time_budget_get_a_504_problem() {
    // The listing waits behind a lock an owner holds, past the 200 ms budget. (A zero
    // budget was a race: tokio rounds a deadline up to the next millisecond, and a
    // request on a warm pool can finish within it.)
    let app = spawn_app_with(ApiConfig {
        request_timeout: Duration::from_millis(200),
        ..ApiConfig::default()
    })
    .await;
    let mut owner = app.env.db.owner.owner_connection().await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE scan_status IN ACCESS EXCLUSIVE MODE")
        .execute(&mut owner)
        .await
        .unwrap();
    let p = problem(app.get("/api/scans").await, 504).await;
    assert_eq!(p["code"], "timeout");
    sqlx::raw_sql("ROLLBACK").execute(&mut owner).await.unwrap();
    // Once the lock is gone, the same request is answered.
    assert_eq!(app.get("/api/scans").await.status(), 200);
}

#[tokio::test]
async fn random_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let metrics = |app: &App| {
        let (http, url, token) = (app.http.clone(), app.url("/metrics"), app.reader.clone());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            r.text().await.unwrap()
        }
    };
    // Every label a request can produce exists after one round of each kind.
    for m in ["BREW", "GET"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        app.http
            .request(method, app.url("/api/scans"))
            .send()
            .await
            .unwrap();
    }
    // The scrape counts itself: scrape once so its own labels exist too.
    metrics(&app).await;
    let before = metrics(&app).await.len();
    for _ in 0..2_000 {
        let name: String = (0..200)
            .map(|_| char::from(b'A' + fastrand::u8(..26)))
            .collect();
        let method = reqwest::Method::from_bytes(name.as_bytes()).unwrap();
        let r = app
            .http
            .request(method, app.url("/api/scans"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let after = metrics(&app).await;
    assert!(
        after.len() <= before + 64,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    assert!(after.contains("method=\"other\""), "{after}");
}

#[tokio::test]
async fn json_bodies_need_a_json_content_type() {
    let app = spawn_app().await;
    let body = format!("{{\"subscription_id\": \"{SUB}\"}}");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .http
            .post(app.url("/api/scans"))
            .bearer_auth(&app.operator)
            .body(body.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let p = problem(req.send().await.unwrap(), 415).await;
        assert_eq!(p["status"], 415, "{ct:?}");
    }
}

#[tokio::test]
async fn without_auth_only_loopback_host_names_are_served() {
    let env = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, shutdown) = scanledger::shutdown::Shutdown::new();
    let state = scanledger::api::AppState::new(
        env.ledger.clone(),
        scanledger::api::AuthMode::Disabled,
        ApiConfig::default(),
    );
    tokio::spawn(scanledger::api::serve(listener, state, shutdown));
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/scans");
    // A rebound DNS name reaches the socket but names itself in Host.
    let r = http
        .get(&url)
        .header("host", format!("attacker.example:{}", addr.port()))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    for host in [format!("localhost:{}", addr.port()), addr.to_string()] {
        let r = http
            .get(&url)
            .header("host", host.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn a_wildcard_cors_origin_allows_any_origin() {
    let app = spawn_app_with(ApiConfig {
        cors_origins: vec!["*".into()],
        ..ApiConfig::default()
    })
    .await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/scans"))
        .header("origin", "https://anywhere.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
}

/// `/docs`: the API reference page and its assets, from the binary, without a token,
/// each with a Content-Security-Policy that allows this origin only and no inline code;
/// the page loads nothing from elsewhere and renders the served document.
#[tokio::test]
async fn the_api_reference_is_served_with_a_strict_policy() {
    let app = spawn_app().await;
    let fetch = |path: &'static str| {
        let (http, url) = (app.http.clone(), app.url(path));
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let h = r.headers().clone();
            let csp = h["content-security-policy"].to_str().unwrap().to_string();
            for directive in [
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "connect-src 'self'",
                "frame-ancestors 'none'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(directive), "{path}: {directive} not in {csp}");
            }
            assert!(!csp.contains("unsafe"), "{path}: {csp}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            let ct = h["content-type"].to_str().unwrap().to_string();
            (ct, r.text().await.unwrap())
        }
    };
    let (ct, html) = fetch("/docs").await;
    assert!(ct.starts_with("text/html"), "{ct}");
    let lower = html.to_lowercase();
    // No inline code or style: every script has a src and an empty body; no style
    // element or attribute; no event-handler attribute.
    for (i, _) in lower.match_indices("<script") {
        let tag_end = i + lower[i..].find('>').unwrap();
        assert!(
            lower[i..tag_end].contains(" src="),
            "inline script in {html}"
        );
        assert!(
            lower[tag_end + 1..].starts_with("</script>"),
            "inline script in {html}"
        );
    }
    assert!(
        !lower.contains("<style") && !lower.contains(" style="),
        "{html}"
    );
    assert!(
        !lower.contains(" onload=") && !lower.contains(" onclick="),
        "{html}"
    );
    // Nothing from another origin (no CDN): every src and href is a path of this server.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let v = &html[i + attr.len()..];
            let v = &v[..v.find('"').unwrap()];
            assert!(v.starts_with('/') && !v.starts_with("//"), "{attr}{v}");
            if v.starts_with("/docs/") {
                assets.push(v.to_string());
            }
        }
    }
    assets.sort();
    assert_eq!(assets, ["/docs/app.js", "/docs/style.css"]);
    let (ct, js) = fetch("/docs/app.js").await;
    assert!(ct.starts_with("text/javascript"), "{ct}");
    assert!(js.contains("fetch(\"/api/openapi.json\""));
    assert!(
        !js.contains("innerHTML") && !js.contains("eval("),
        "text only"
    );
    assert!(!js.contains("http://") && !js.contains("https://"));
    let (ct, css) = fetch("/docs/style.css").await;
    assert!(ct.starts_with("text/css"), "{ct}");
    assert!(
        !css.contains("url(") && !css.contains("@import"),
        "no remote fonts or images"
    );
    // The document the page renders, for any token (401 without one: the page asks).
    assert_eq!(app.get("/api/openapi.json").await.status(), 200);
    let anonymous = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
