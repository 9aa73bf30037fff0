//! A real Prometheus server (Debian package `prometheus`, installed by
//! `.ci/run`) scraping a collector: generated config, temporary storage,
//! a free loopback port, killed on drop. Queries go through its HTTP API.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Where the Debian package puts the binary (`PROMETHEUS_BIN` overrides).
const DEFAULT_BIN: &str = "/usr/bin/prometheus";
/// How long Prometheus may take to answer `/-/ready`.
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct Prometheus {
    child: Option<Child>,
    base: String,
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start Prometheus scraping `target` (`host:port` of the collector's
    /// HTTP address, path `/metrics`) every `interval`.
    pub fn start(target: &str, interval: Duration) -> Prometheus {
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| DEFAULT_BIN.to_string());
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} not found: install the Debian package `prometheus` (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("skein-e2e-prom-")
            .tempdir()
            .expect("temporary dir");
        let secs = format!("{}ms", interval.as_millis().max(100));
        let config = [
            "global:".to_string(),
            format!("  scrape_interval: {secs}"),
            format!("  evaluation_interval: {secs}"),
            "scrape_configs:".to_string(),
            "  - job_name: skein".to_string(),
            format!("    scrape_interval: {secs}"),
            format!("    scrape_timeout: {secs}"),
            "    static_configs:".to_string(),
            format!("      - targets: ['{target}']"),
            String::new(),
        ]
        .join("\n");
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("writing prometheus.yml");
        let client = crate::http_client()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        // A port that was free a moment ago; retried if Prometheus loses the race.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
            let base = format!("http://127.0.0.1:{port}");
            let ready = crate::poll_until(READY_WITHIN, || {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                client
                    .get(format!("{base}/-/ready"))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            });
            if ready && child.try_wait().ok().flatten().is_none() {
                return Prometheus {
                    child: Some(child),
                    base,
                    client,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            eprintln!("prometheus did not start on port {port}: {err}");
        }
        panic!("prometheus did not start (see the messages above)");
    }

    /// An instant query; the `data.result` array (empty on any failure, so
    /// callers can poll).
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let resp = self
            .client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send();
        let Ok(resp) = resp else {
            return Vec::new();
        };
        let body: Value = resp.json().unwrap_or(Value::Null);
        assert_ne!(
            body["status"], "error",
            "prometheus rejected the query {promql}: {body}"
        );
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}
