//! A real Prometheus server (Debian's `prometheus`, installed by `.ci/run`)
//! on a free local port with temporary storage, scraping given targets every
//! second. Dropping it kills the process.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    base: String,
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

/// The `prometheus` binary, if installed.
pub fn binary() -> Option<&'static str> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (`host:port`, path `/metrics`) as
    /// job `skein` every second; waits until it is ready.
    pub fn start(targets: &[String]) -> Prometheus {
        let bin = binary().expect("prometheus is not installed (apt-get install prometheus)");
        let dir = tempfile::Builder::new()
            .prefix("skein-prom-")
            .tempdir()
            .expect("temp dir");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: skein\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("writing prometheus.yml");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        // A port taken between probing and binding makes Prometheus exit:
        // try a few ports.
        for attempt in 0..5 {
            let port = free_port();
            let base = format!("http://127.0.0.1:{port}");
            let log_path = dir.path().join(format!("prometheus-{attempt}.log"));
            let log = std::fs::File::create(&log_path).expect("log file");
            let mut child = Command::new(bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join(format!("data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting prometheus");
            let mut exited = false;
            let ready = crate::poll_until(Duration::from_secs(30), || {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    exited = true;
                    return true;
                }
                client
                    .get(format!("{base}/-/ready"))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            });
            if ready && !exited {
                return Prometheus {
                    child,
                    base,
                    client,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "prometheus did not start on port {port}: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        panic!("prometheus did not start after 5 attempts");
    }

    /// An instant PromQL query: `data.result` (panics on an error answer).
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let resp = self
            .client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap_or(Value::Null);
        assert_eq!(status, 200, "PromQL {promql} failed: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
