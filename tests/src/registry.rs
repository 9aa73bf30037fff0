//! A blocking client for the collector's registry API
//! (`/api/v1/registry/…`) used by `tests/registry_*.rs`.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::{json, Value};

/// Registry client for one collector's `--http-addr`.
#[derive(Clone)]
pub struct RegistryClient {
    base: String,
    client: reqwest::blocking::Client,
}

impl RegistryClient {
    pub fn new(http_base: String) -> Self {
        let client = crate::http_client()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("building the HTTP client");
        RegistryClient {
            base: http_base,
            client,
        }
    }

    fn answer(resp: reqwest::blocking::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST a raw heartbeat body.
    pub fn heartbeat_raw(&self, body: &Value) -> (u16, Value) {
        let url = format!("{}/api/v1/registry/heartbeat", self.base);
        let resp = self
            .client
            .post(&url)
            .json(body)
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        Self::answer(resp)
    }

    /// Heartbeat `service`/`instance` with `ttl` and revision `rev`.
    pub fn heartbeat(&self, service: &str, instance: &str, ttl: &str, rev: u64) -> (u16, Value) {
        self.heartbeat_raw(&json!({
            "service": service,
            "instance": instance,
            "ttl": ttl,
            "heartbeat_revision": rev,
            "address": format!("{instance}.local:8080"),
            "metadata": {"zone": "test"},
        }))
    }

    /// A heartbeat that must be accepted; returns the reply.
    pub fn heartbeat_ok(&self, service: &str, instance: &str, ttl: &str, rev: u64) -> Value {
        let (s, v) = self.heartbeat(service, instance, ttl, rev);
        assert_eq!(s, 200, "heartbeat {service}/{instance} rev {rev}: {s} {v}");
        v
    }

    pub fn deregister(&self, service: &str, instance: &str, reason: &str) -> (u16, Value) {
        let url = format!(
            "{}/api/v1/registry/instances/{service}/{instance}",
            self.base
        );
        let resp = self
            .client
            .delete(&url)
            .query(&[("reason", reason)])
            .send()
            .unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
        Self::answer(resp)
    }

    /// One instance, `None` on 404.
    pub fn instance(&self, service: &str, instance: &str) -> Option<Value> {
        let url = format!(
            "{}/api/v1/registry/instances/{service}/{instance}",
            self.base
        );
        let (s, v) = Self::answer(
            self.client
                .get(&url)
                .send()
                .unwrap_or_else(|e| panic!("GET {url}: {e}")),
        );
        match s {
            200 => Some(v),
            404 => None,
            other => panic!("GET {url}: {other} {v}"),
        }
    }

    /// The state (`alive`, `expired`, `deregistered`) of one instance.
    pub fn state(&self, service: &str, instance: &str) -> Option<String> {
        self.instance(service, instance)
            .and_then(|v| v["state"].as_str().map(str::to_string))
    }

    pub fn services(&self, query: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}/api/v1/registry/services", self.base);
        Self::answer(
            self.client
                .get(&url)
                .query(query)
                .send()
                .unwrap_or_else(|e| panic!("GET {url}: {e}")),
        )
    }

    /// The current global revision.
    pub fn revision(&self) -> u64 {
        let (s, v) = self.services(&[]);
        assert_eq!(s, 200, "{v}");
        v["revision"].as_u64().expect("revision")
    }

    /// Long-poll the watch endpoint.
    pub fn watch(&self, from: u64, timeout: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/registry/watch", self.base);
        Self::answer(
            self.client
                .get(&url)
                .query(&[
                    ("from_revision", from.to_string().as_str()),
                    ("timeout", timeout),
                ])
                .send()
                .unwrap_or_else(|e| panic!("GET {url}: {e}")),
        )
    }

    /// Open the SSE stream from `from` and read `n` events (`(id, type, data)`).
    pub fn sse(&self, from: u64, n: usize) -> Vec<(u64, String, Value)> {
        let url = format!("{}/api/v1/registry/watch", self.base);
        let resp = self
            .client
            .get(&url)
            .query(&[("from_revision", from.to_string())])
            .header("accept", "text/event-stream")
            .send()
            .unwrap_or_else(|e| panic!("GET {url} (SSE): {e}"));
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        let mut out = Vec::new();
        let (mut id, mut kind, mut data) = (0u64, String::new(), String::new());
        for line in BufReader::new(resp).lines() {
            let line = line.expect("reading the SSE stream");
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().expect("numeric SSE id");
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                let value = serde_json::from_str(&data).expect("SSE data is JSON");
                out.push((id, std::mem::take(&mut kind), value));
                data.clear();
                if out.len() == n {
                    break;
                }
            }
        }
        out
    }

    /// `/metrics` text.
    pub fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.base);
        self.client
            .get(&url)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }
}

/// The value of the metric line starting with `series` (e.g.
/// `skein_registry_instances{state="expired"}`), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
