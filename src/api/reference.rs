//! `GET /docs`: the API reference, rendered in the browser from `/api/openapi.json` by a
//! small hand-written page (`reference/`: HTML, JavaScript, CSS), embedded in the binary.
//! Nothing is loaded from elsewhere, and the Content-Security-Policy says so: scripts,
//! styles and requests from this origin only, no inline code, no framing.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("reference/index.html");
const APP: &str = include_str!("reference/app.js");
const STYLE: &str = include_str!("reference/style.css");

/// The policy of the page and its assets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub(super) async fn app() -> Response {
    asset("text/javascript; charset=utf-8", APP)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
