//! A tiny W3C WebDriver client over `reqwest`, and a `chromedriver` it starts: enough to
//! drive headless Chromium through the console (navigate, find, click, type, read text,
//! run a script, take a screenshot). Conditions are awaited by polling the page, never by
//! sleeping a fixed time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The key WebDriver names an element reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free port; killed when dropped.
pub struct ChromeDriver {
    child: Child,
    pub base: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The Chromium binary: `$CHROMIUM`, Debian's real binary behind its wrapper script, or
/// `chromium` / `chromium-browser` / `google-chrome` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/lib/chromium/chromium");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    find_program(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .expect(
        "Chromium is needed for the console's browser tests: `apt-get install chromium \
         chromium-driver` (Debian), or set CHROMIUM and CHROMEDRIVER",
    )
}

impl ChromeDriver {
    pub async fn start() -> Self {
        let program = find_program("CHROMEDRIVER", &["chromedriver"]).expect(
            "chromedriver is needed for the console's browser tests: `apt-get install \
             chromium chromium-driver` (Debian), or set CHROMEDRIVER",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        super::wait_until("chromedriver is ready", Duration::from_secs(30), || {
            let url = format!("{}/status", driver.base);
            let http = http.clone();
            async move {
                match http.get(url).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["value"]["ready"] == true),
                    Err(_) => false,
                }
            }
        })
        .await;
        driver
    }

    /// A new headless browser session.
    pub async fn session(&self) -> Browser {
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium().display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1400,1000", "--lang=en-US",
                         "--hide-scrollbars"],
            },
        }}});
        let resp: Value = http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session")
            .json()
            .await
            .unwrap();
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_string();
        Browser {
            http,
            base: format!("{}/session/{id}", self.base),
        }
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

/// An element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("WebDriver request");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {}",
            v["value"]
        );
        v["value"].clone()
    }

    /// Like `call`, but a WebDriver error is returned, not a panic.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v["value"]["error"].as_str().unwrap_or("error").to_string())
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every element matching a CSS selector (none: empty).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .try_call(
                reqwest::Method::POST,
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await
            .unwrap_or(Value::Array(vec![]));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, awaited (up to `timeout`).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let found = std::sync::Mutex::new(None);
        super::wait_until(&format!("an element {css}"), timeout, || async {
            let all = self.find_all(css).await;
            let first = all.into_iter().next();
            let ok = first.is_some();
            *found.lock().unwrap() = first;
            ok
        })
        .await;
        found.into_inner().unwrap().expect("found")
    }

    /// Await the text of the first element matching `css` satisfying `pred`.
    pub async fn wait_for_text(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let last = std::sync::Mutex::new(String::new());
        super::wait_until(&format!("{css}: {what}"), timeout, || async {
            let Some(e) = self.find_all(css).await.into_iter().next() else {
                return false;
            };
            // The element may be replaced between the find and the read.
            let Ok(text) = self
                .try_call(
                    reqwest::Method::GET,
                    &format!("/element/{}/text", e.0),
                    Value::Null,
                )
                .await
            else {
                return false;
            };
            let text = text.as_str().unwrap_or_default().to_string();
            let ok = pred(&text);
            *last.lock().unwrap() = text;
            ok
        })
        .await;
        last.into_inner().unwrap()
    }

    pub async fn text(&self, e: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn send_keys(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Run `script` (a function body) in the page; its return value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// A PNG of the page (the window grown to the page's height, at most 2400 px).
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let height = self
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                json!([]),
            )
            .await
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 2400);
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1400, "height": height + 140})),
        )
        .await;
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("a base64 screenshot"))
            .expect("base64");
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1400, "height": 1000})),
        )
        .await;
        png
    }

    /// Messages the page logged at level SEVERE (errors, CSP violations).
    pub async fn severe_logs(&self) -> Vec<String> {
        let v = self
            .try_call(reqwest::Method::POST, "/se/log", json!({"type": "browser"}))
            .await
            .unwrap_or(Value::Array(vec![]));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
