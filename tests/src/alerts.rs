//! Helpers for the alerting tests: a real Alertmanager
//! (`prometheus-alertmanager`, Debian) on an ephemeral port with its own
//! storage dir, a webhook receiver (a small axum server) that records every
//! payload, and a client for Skein's alert API.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Where Debian installs Alertmanager.
pub const ALERTMANAGER_BIN: &str = "/usr/bin/prometheus-alertmanager";

/// A free local port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}

fn client() -> reqwest::blocking::Client {
    crate::http_client()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// A real Alertmanager. Dropping it kills the process.
pub struct Alertmanager {
    child: Child,
    _dir: tempfile::TempDir,
    pub base: String,
}

impl Alertmanager {
    /// Start with a `null` receiver and a short group wait; waits for `/-/ready`.
    pub fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .expect("writing alertmanager.yml");
        let port = free_port();
        let child = Command::new(ALERTMANAGER_BIN)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {ALERTMANAGER_BIN} (apt-get install prometheus-alertmanager): {e}")
            });
        let am = Alertmanager {
            child,
            _dir: dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        let c = client();
        crate::wait_until(Duration::from_secs(30), "Alertmanager /-/ready", || {
            c.get(format!("{}/-/ready", am.base))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        am
    }

    /// `GET /api/v2/alerts` (active alerts).
    pub fn alerts(&self) -> Vec<Value> {
        client()
            .get(format!("{}/api/v2/alerts", self.base))
            .send()
            .and_then(|r| r.json::<Value>())
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver recording every JSON payload it gets.
pub struct Webhook {
    pub url: String,
    payloads: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Webhook {
    pub fn start() -> Webhook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let payloads: Arc<Mutex<Vec<Value>>> = Arc::default();
        let store = payloads.clone();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding the webhook receiver");
        let addr = listener.local_addr().expect("local addr");
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push(v);
                    "ok"
                }
            }),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook {
            url: format!("http://{addr}/hook"),
            payloads,
            _runtime: runtime,
        }
    }

    pub fn payloads(&self) -> Vec<Value> {
        self.payloads.lock().unwrap().clone()
    }

    /// Every alert in every payload, with the payload's status, as
    /// `(payload status, alert)`.
    pub fn alerts(&self) -> Vec<(String, Value)> {
        self.payloads()
            .into_iter()
            .flat_map(|p| {
                let status = p["status"].as_str().unwrap_or("").to_string();
                p["alerts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |a| (status.clone(), a))
            })
            .collect()
    }
}

/// Skein's alerting API.
pub struct AlertsApi {
    base: String,
}

impl AlertsApi {
    pub fn new(http_base: &str) -> Self {
        AlertsApi {
            base: http_base.to_string(),
        }
    }

    /// Active alerts (`GET /api/v1/alerts`).
    pub fn alerts(&self) -> Vec<Value> {
        self.get("/api/v1/alerts")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The active alert named `name`, if any.
    pub fn alert(&self, name: &str) -> Option<Value> {
        self.alerts().into_iter().find(|a| a["name"] == name)
    }

    pub fn history(&self) -> Vec<Value> {
        self.get("/api/v1/alerts/history")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Value {
        client()
            .get(format!("{}{path}", self.base))
            .send()
            .and_then(|r| r.json::<Value>())
            .unwrap_or(Value::Null)
    }

    /// POST/PUT/DELETE with a body; returns (status, JSON).
    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = client()
            .request(m, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request to the collector");
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    }
}

/// Write a rule file into `dir`.
pub fn rule_file(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).expect("writing a rule file");
    p
}
