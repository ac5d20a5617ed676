//! A long-running `scanledger` process (worker, serve) with `--metrics-listen
//! 127.0.0.1:0` and `--log-format json`: its log collected line by line, its operations
//! listener's address read from the log line `metrics listening`, and a scrape of it.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wait_until;

pub struct OpsProc {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT` of the operations listener.
    pub base: String,
    pub http: reqwest::Client,
}

impl OpsProc {
    /// Start `scanledger ARGS --metrics-listen 127.0.0.1:0 --log-format json` with
    /// `envs`, and wait until it names its metrics address.
    pub async fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scanledger"))
            .args(args)
            .args(["--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn,scanledger::api::metrics=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn scanledger");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        let mut p = Self {
            child,
            log,
            base: String::new(),
            http: {
                scanledger::install_crypto_provider();
                reqwest::Client::new()
            },
        };
        wait_until(
            "the process logs its metrics address",
            Duration::from_secs(60),
            || {
                let found = p.metrics_addr().is_some();
                async move { found }
            },
        )
        .await;
        p.base = format!("http://{}", p.metrics_addr().unwrap());
        p
    }

    /// The `addr` of the JSON log line `metrics listening`.
    fn metrics_addr(&self) -> Option<String> {
        self.log().iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["message"] == "metrics listening").then(|| v["addr"].as_str().map(String::from))?
        })
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// GET `path` of the operations listener: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// `/metrics`, which answers 200 whether or not the database does.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OpsProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- log of the process ----");
            for line in self.log() {
                eprintln!("{line}");
            }
        }
    }
}

/// The value of the sample `name` (with its labels, exactly as written) in a scrape.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
