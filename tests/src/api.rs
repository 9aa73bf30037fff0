//! A blocking client for the collector's query side: the Jaeger API, the
//! native logs API, `/metrics` and the debug hooks. Call it from plain
//! `#[test]` functions, not from inside an async runtime.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::QUERYABLE_WITHIN;

/// Query client for one collector's `--http-addr`.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    pub fn new(base: String) -> Api {
        let client = crate::http_client()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("building the HTTP client");
        Api { base, client }
    }

    /// GET `path` with `query`; the status and the body as JSON (`Null` when
    /// the body is not JSON).
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .get(&url)
            .query(query)
            .send()
            .unwrap_or_else(|e| panic!("GET {url} {query:?}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET that must answer 200 with JSON.
    pub fn get_ok(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(path, query);
        assert_eq!(
            status, 200,
            "GET {path} {query:?} answered {status}: {body}"
        );
        body
    }

    /// POST without a body (the debug hooks); returns the status.
    pub fn post(&self, path: &str) -> u16 {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .post(&url)
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        resp.status().as_u16()
    }

    /// `GET /api/traces/{id}`: `None` on 404 or an empty `data`.
    pub fn trace(&self, trace_id: &str) -> Option<JaegerTrace> {
        let (status, body) = self.get(&format!("/api/traces/{trace_id}"), &[]);
        trace_of(trace_id, status, body)
    }

    /// Wait until trace `trace_id` has at least `spans` spans.
    pub fn wait_trace(&self, trace_id: &str, spans: usize) -> JaegerTrace {
        let path = format!("/api/traces/{trace_id}");
        let mut last = (0, Value::Null);
        let mut found = None;
        crate::poll_until(QUERYABLE_WITHIN, || {
            last = self.get(&path, &[]);
            found = trace_of(trace_id, last.0, last.1.clone()).filter(|t| t.spans().len() >= spans);
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "trace {trace_id} did not reach {spans} span(s) within {QUERYABLE_WITHIN:?}; last answer: {} {}",
                last.0, last.1
            )
        })
    }

    /// `GET /api/traces?…` (search): the traces in `data`.
    pub fn search(&self, query: &[(&str, &str)]) -> Vec<JaegerTrace> {
        let body = self.get_ok("/api/traces", query);
        let data = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("search {query:?}: no data array in {body}"));
        data.iter().cloned().map(JaegerTrace).collect()
    }

    /// The trace ids a search returns.
    pub fn search_ids(&self, query: &[(&str, &str)]) -> Vec<String> {
        self.search(query)
            .iter()
            .map(|t| t.id().to_string())
            .collect()
    }

    /// `GET /api/services`.
    pub fn services(&self) -> Vec<String> {
        strings(&self.get_ok("/api/services", &[])["data"])
    }

    /// `GET /api/services/{service}/operations`.
    pub fn operations(&self, service: &str) -> Vec<String> {
        strings(&self.get_ok(&format!("/api/services/{service}/operations"), &[])["data"])
    }

    /// `GET /api/v1/logs?…`: the `logs` array.
    pub fn logs(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let body = self.get_ok("/api/v1/logs", query);
        body["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("logs {query:?}: no logs array in {body}"))
            .clone()
    }

    /// Wait until `/api/v1/logs?…` returns at least `n` records.
    pub fn wait_logs(&self, query: &[(&str, &str)], n: usize) -> Vec<Value> {
        let mut last = Vec::new();
        let ok = crate::poll_until(QUERYABLE_WITHIN, || {
            last = self.logs(query);
            last.len() >= n
        });
        assert!(
            ok,
            "logs {query:?}: wanted {n}, got {} within {QUERYABLE_WITHIN:?}: {last:?}",
            last.len()
        );
        last
    }

    /// `GET /metrics` as text.
    pub fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.base);
        let resp = self
            .client
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "GET /metrics");
        resp.text().expect("metrics body")
    }
}

fn trace_of(trace_id: &str, status: u16, body: Value) -> Option<JaegerTrace> {
    match status {
        404 => None,
        200 => body["data"]
            .as_array()
            .and_then(|d| d.first())
            .cloned()
            .map(JaegerTrace),
        _ => panic!("GET /api/traces/{trace_id} answered {status}: {body}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of strings, got {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

/// One trace in Jaeger's JSON.
#[derive(Clone)]
pub struct JaegerTrace(pub Value);

impl JaegerTrace {
    pub fn id(&self) -> &str {
        self.0["traceID"].as_str().unwrap_or("")
    }

    pub fn spans(&self) -> Vec<JaegerSpan> {
        self.0["spans"]
            .as_array()
            .map(|s| s.iter().cloned().map(JaegerSpan).collect())
            .unwrap_or_default()
    }

    /// The one span with operation `name`; panics listing what is there.
    pub fn span(&self, name: &str) -> JaegerSpan {
        let spans = self.spans();
        let mut matching = spans.iter().filter(|s| s.operation() == name);
        let span = matching
            .next()
            .unwrap_or_else(|| panic!("trace {} has no span '{name}': {self}", self.id()))
            .clone();
        assert!(
            matching.next().is_none(),
            "trace {} has several spans '{name}'",
            self.id()
        );
        span
    }

    /// `processes[span.processID].serviceName`.
    pub fn service_of(&self, span: &JaegerSpan) -> String {
        let pid = span.0["processID"].as_str().unwrap_or("");
        self.0["processes"][pid]["serviceName"]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "no process '{pid}' with a serviceName in trace {}",
                    self.id()
                )
            })
            .to_string()
    }
}

impl fmt::Display for JaegerTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One span in Jaeger's JSON.
#[derive(Clone)]
pub struct JaegerSpan(pub Value);

impl JaegerSpan {
    pub fn id(&self) -> &str {
        self.0["spanID"].as_str().unwrap_or("")
    }

    pub fn operation(&self) -> &str {
        self.0["operationName"].as_str().unwrap_or("")
    }

    pub fn start_us(&self) -> i64 {
        self.0["startTime"]
            .as_i64()
            .expect("startTime is an integer")
    }

    pub fn duration_us(&self) -> i64 {
        self.0["duration"].as_i64().expect("duration is an integer")
    }

    /// The span id of the first `CHILD_OF` reference (Jaeger's parent).
    pub fn parent(&self) -> Option<String> {
        self.0["references"].as_array()?.iter().find_map(|r| {
            (r["refType"] == "CHILD_OF").then(|| r["spanID"].as_str().unwrap_or("").to_string())
        })
    }

    /// The `(type, value)` of tag `key`.
    pub fn tag(&self, key: &str) -> Option<(String, Value)> {
        self.0["tags"].as_array()?.iter().find_map(|t| {
            (t["key"] == key).then(|| {
                (
                    t["type"].as_str().unwrap_or("").to_string(),
                    t["value"].clone(),
                )
            })
        })
    }

    /// Like [`JaegerSpan::tag`], panicking with the span when missing.
    pub fn must_tag(&self, key: &str) -> (String, Value) {
        self.tag(key)
            .unwrap_or_else(|| panic!("span '{}' has no tag '{key}': {}", self.operation(), self.0))
    }

    /// The span's Jaeger logs (OTLP events).
    pub fn logs(&self) -> Vec<Value> {
        self.0["logs"].as_array().cloned().unwrap_or_default()
    }
}
