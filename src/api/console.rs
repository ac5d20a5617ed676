//! The console at `/ui`: a few hand-written HTML, CSS and JavaScript files (ES modules,
//! no framework, no build step) embedded in the binary, served with a strict
//! Content-Security-Policy. The page reads the public API with the token its user pastes
//! (kept in the tab's sessionStorage, sent in a header, never in a URL). See
//! docs/console.md.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Only this origin's files and API; no inline script or style, no plugins, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// (name under `/ui/`, content type, bytes)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/console.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../ui/favicon.svg"),
    ),
    ("app.js", JS, include_str!("../../ui/app.js")),
    ("api.js", JS, include_str!("../../ui/api.js")),
    ("dom.js", JS, include_str!("../../ui/dom.js")),
    ("scans.js", JS, include_str!("../../ui/scans.js")),
    ("scan.js", JS, include_str!("../../ui/scan.js")),
    ("ledger.js", JS, include_str!("../../ui/ledger.js")),
    ("chart.js", JS, include_str!("../../ui/chart.js")),
    (
        "subscription.js",
        JS,
        include_str!("../../ui/subscription.js"),
    ),
    ("compliance.js", JS, include_str!("../../ui/compliance.js")),
    ("operations.js", JS, include_str!("../../ui/operations.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// The names of the embedded files (for tests and docs).
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(name, _, _)| *name)
}

fn asset(name: &str) -> Result<Response, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            // The files change with the binary: revalidate on every load.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        *body,
    )
        .into_response())
}

/// `GET /ui` and `GET /ui/`: the page.
pub(super) async fn index() -> Result<Response, ApiError> {
    asset("index.html")
}

/// `GET /ui/{file}`: a stylesheet or module of the page.
pub(super) async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    asset(&name)
}
