//! The 3-service call chain the SDK tests send (Rust and Python build the
//! same shape) and the assertions that read it back through the APIs.
//!
//! Shape: `frontend` "GET /checkout" (server; tags `customer.tier`="gold",
//! `http.status_code`=200, `cache.hit`=false; event "cart loaded" with
//! `items`=3) → `order` "create order" → `inventory` "reserve stock" (status
//! ERROR). Two log records from `inventory` inside "reserve stock": an ERROR
//! and then a WARN, both with the test's marker word in the body.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{Api, JaegerTrace};

pub const SERVICES: [&str; 3] = ["frontend", "order", "inventory"];
pub const ROOT: &str = "GET /checkout";
pub const ORDER: &str = "create order";
pub const INVENTORY: &str = "reserve stock";
pub const EVENT: &str = "cart loaded";

/// What a client reports it sent.
#[derive(Debug, Clone)]
pub struct SentChain {
    pub trace_id: String,
    pub root: String,
    pub order: String,
    pub inventory: String,
    /// Log bodies in emission order (ERROR first, then WARN).
    pub log_bodies: Vec<String>,
}

/// A word unique to one test run, for full-text log searches.
pub fn marker() -> String {
    format!("mark{}", crate::otlp::hex(&crate::otlp::new_span_id()))
}

/// The bodies both SDK clients log (same text as `tests/python/send_chain.py`).
pub fn log_bodies(marker: &str) -> Vec<String> {
    vec![
        format!("stock check failed {marker}"),
        format!("reservation rolled back {marker}"),
    ]
}

/// Everything the SDK tests assert, through the public APIs.
pub fn verify(api: &Api, sent: &SentChain) {
    let trace = api.wait_trace(&sent.trace_id, 3);
    verify_trace(&trace, sent);
    verify_searches(api, &trace, sent);
    verify_logs(api, sent);
}

/// Spans, parents, services, typed tags, the event and the error tag.
pub fn verify_trace(trace: &JaegerTrace, sent: &SentChain) {
    assert_eq!(trace.id(), sent.trace_id, "traceID of the trace");
    assert_eq!(trace.spans().len(), 3, "exactly three spans: {trace}");
    let root = trace.span(ROOT);
    let order = trace.span(ORDER);
    let inventory = trace.span(INVENTORY);

    for (span, id, service) in [
        (&root, &sent.root, "frontend"),
        (&order, &sent.order, "order"),
        (&inventory, &sent.inventory, "inventory"),
    ] {
        assert_eq!(span.id(), id, "spanID of '{}'", span.operation());
        assert_eq!(
            span.0["traceID"],
            sent.trace_id.as_str(),
            "traceID of '{}'",
            span.operation()
        );
        assert_eq!(
            trace.service_of(span),
            service,
            "service of '{}'",
            span.operation()
        );
        assert!(
            span.start_us() > 1_000_000_000_000_000,
            "startTime of '{}' is in µs",
            span.operation()
        );
        assert!(
            span.duration_us() >= 0,
            "duration of '{}'",
            span.operation()
        );
    }

    assert_eq!(
        root.parent(),
        None,
        "the root has no CHILD_OF reference: {}",
        root.0
    );
    assert_eq!(
        order.parent().as_deref(),
        Some(sent.root.as_str()),
        "order's parent: {}",
        order.0
    );
    assert_eq!(
        inventory.parent().as_deref(),
        Some(sent.order.as_str()),
        "inventory's parent: {}",
        inventory.0
    );
    for span in [&order, &inventory] {
        let r = &span.0["references"][0];
        assert_eq!(r["refType"], "CHILD_OF", "{}", span.0);
        assert_eq!(
            r["traceID"],
            sent.trace_id.as_str(),
            "reference traceID: {}",
            span.0
        );
    }

    assert_eq!(
        root.must_tag("customer.tier"),
        ("string".into(), Value::from("gold"))
    );
    assert_eq!(
        root.must_tag("http.status_code"),
        ("int64".into(), Value::from(200))
    );
    assert_eq!(
        root.must_tag("cache.hit"),
        ("bool".into(), Value::from(false))
    );
    assert_eq!(
        root.must_tag("span.kind"),
        ("string".into(), Value::from("server"))
    );

    let logs = root.logs();
    assert_eq!(logs.len(), 1, "one event on the root span: {}", root.0);
    let fields = logs[0]["fields"].as_array().expect("log fields");
    let field = |key: &str| fields.iter().find(|f| f["key"] == key).cloned();
    let event = field("event").unwrap_or_else(|| panic!("no 'event' field in {}", logs[0]));
    assert_eq!(event["value"], EVENT, "event name: {}", logs[0]);
    let items = field("items").unwrap_or_else(|| panic!("no 'items' field in {}", logs[0]));
    assert_eq!(
        (items["type"].as_str(), items["value"].as_i64()),
        (Some("int64"), Some(3)),
        "{}",
        logs[0]
    );
    let ts = logs[0]["timestamp"].as_i64().expect("log timestamp (µs)");
    assert!(
        ts >= root.start_us() && ts <= root.start_us() + root.duration_us() + 1,
        "event timestamp {ts} µs lies in the root span: {}",
        root.0
    );

    assert_eq!(
        inventory.must_tag("error"),
        ("bool".into(), Value::from(true)),
        "{}",
        inventory.0
    );
    for span in [&root, &order] {
        if let Some((_, v)) = span.tag("error") {
            assert_eq!(
                v,
                Value::from(false),
                "'{}' did not fail: {}",
                span.operation(),
                span.0
            );
        }
    }
}

/// Search window covering the last hour, in µs as Grafana sends it.
pub fn window_us() -> (String, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros();
    (
        (now - 3_600_000_000).to_string(),
        (now + 60_000_000).to_string(),
    )
}

/// Tag and duration searches, services and operations.
pub fn verify_searches(api: &Api, trace: &JaegerTrace, sent: &SentChain) {
    let (start, end) = window_us();
    let search = |service: &str, extra: &[(&str, &str)]| {
        let mut q = vec![
            ("service", service),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("limit", "20"),
        ];
        q.extend_from_slice(extra);
        let ids = api.search_ids(&q);
        (ids.contains(&sent.trace_id), ids)
    };

    let (found, ids) = search("frontend", &[("tags", r#"{"customer.tier":"gold"}"#)]);
    assert!(found, "tags customer.tier=gold finds the trace: {ids:?}");
    let (found, ids) = search("frontend", &[("tags", r#"{"customer.tier":"silver"}"#)]);
    assert!(
        !found,
        "tags customer.tier=silver must not find the trace: {ids:?}"
    );
    let (found, ids) = search("inventory", &[("tags", r#"{"error":"true"}"#)]);
    assert!(found, "tags error=true finds the trace: {ids:?}");
    let (found, ids) = search("frontend", &[("operation", ROOT)]);
    assert!(found, "operation '{ROOT}' finds the trace: {ids:?}");

    let longest_ms = trace
        .spans()
        .iter()
        .map(|s| s.duration_us())
        .max()
        .unwrap_or(0)
        / 1000;
    let beyond = format!("{}ms", longest_ms + 1000);
    let (found, ids) = search("frontend", &[("minDuration", &beyond)]);
    assert!(!found, "minDuration={beyond} excludes the trace: {ids:?}");
    let (found, ids) = search(
        "frontend",
        &[("minDuration", "0us"), ("maxDuration", &beyond)],
    );
    assert!(
        found,
        "minDuration=0us&maxDuration={beyond} includes the trace: {ids:?}"
    );

    // Every search hit carries at least one span (Grafana reads spans[0]).
    for t in api.search(&[("service", "frontend"), ("start", &start), ("end", &end)]) {
        assert!(!t.spans().is_empty(), "search result without spans: {t}");
    }

    let services = api.services();
    for s in SERVICES {
        assert!(
            services.iter().any(|x| x == s),
            "/api/services lists {s}: {services:?}"
        );
    }
    let ops = api.operations("frontend");
    assert!(
        ops.iter().any(|o| o == ROOT),
        "operations of frontend: {ops:?}"
    );
}

/// Logs by trace id and by full text, newest first, with their context.
pub fn verify_logs(api: &Api, sent: &SentChain) {
    let by_trace = api.wait_logs(&[("trace_id", &sent.trace_id)], sent.log_bodies.len());
    assert_eq!(
        by_trace.len(),
        sent.log_bodies.len(),
        "logs of the trace: {by_trace:?}"
    );
    assert_newest_first(&by_trace);
    for log in &by_trace {
        assert_eq!(log["trace_id"], sent.trace_id.as_str(), "{log}");
        assert_eq!(log["span_id"], sent.inventory.as_str(), "{log}");
        assert_eq!(log["service"], "inventory", "{log}");
    }
    let body_of = |sev: &str| {
        by_trace
            .iter()
            .find(|l| l["severity_text"] == sev)
            .unwrap_or_else(|| panic!("no {sev} record in {by_trace:?}"))
    };
    let error = body_of("ERROR");
    assert_eq!(error["body"], sent.log_bodies[0].as_str(), "{error}");
    assert_eq!(error["severity_number"], 17, "{error}");
    let warn = body_of("WARN");
    assert_eq!(warn["body"], sent.log_bodies[1].as_str(), "{warn}");
    assert_eq!(warn["severity_number"], 13, "{warn}");

    let marker = sent.log_bodies[0].rsplit(' ').next().expect("marker word");
    let by_text = api.wait_logs(&[("query", marker)], 2);
    let mut bodies: Vec<_> = by_text
        .iter()
        .map(|l| l["body"].as_str().unwrap_or("").to_string())
        .collect();
    bodies.sort();
    let mut want = sent.log_bodies.clone();
    want.sort();
    assert_eq!(bodies, want, "full-text search for {marker}");

    let errors_only = api.logs(&[("trace_id", &sent.trace_id), ("severity", "error")]);
    assert_eq!(
        errors_only.len(),
        1,
        "severity=error keeps only the ERROR record: {errors_only:?}"
    );
    let inventory = api.logs(&[("query", marker), ("service", "inventory")]);
    assert_eq!(inventory.len(), 2, "service=inventory: {inventory:?}");
    let frontend = api.logs(&[("query", marker), ("service", "frontend")]);
    assert!(
        frontend.is_empty(),
        "service=frontend has none of these logs: {frontend:?}"
    );
}

/// `timestamp_unix_nano` (number or string) of a log.
pub fn log_ts(log: &Value) -> u64 {
    let ts = &log["timestamp_unix_nano"];
    ts.as_u64()
        .or_else(|| ts.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("no timestamp_unix_nano in {log}"))
}

pub fn assert_newest_first(logs: &[Value]) {
    let ts: Vec<u64> = logs.iter().map(log_ts).collect();
    assert!(
        ts.iter().all(|t| *t > 0),
        "every log has a timestamp: {logs:?}"
    );
    assert!(
        ts.windows(2).all(|w| w[0] >= w[1]),
        "logs are newest first: {ts:?}"
    );
}
