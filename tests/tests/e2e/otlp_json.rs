//! OTLP/HTTP JSON written by hand, the way curl users send it: hex ids, enum
//! numbers, 64-bit integers both as strings and as numbers; plain and gzip.

use serde_json::{json, Value};
use skein_e2e::otlp::{self, hex, new_span_id, new_trace_id, now_ns, JSON};
use skein_e2e::Collector;

/// A trace of two spans (parent + child) as OTLP JSON.
fn trace_json(trace_id: &str, parent: &str, child: &str) -> Value {
    let end = now_ns();
    let start = end - 250_000_000;
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl-shop"}}]},
        "scopeSpans": [{
            "scope": {"name": "by-hand", "version": "0.1"},
            "spans": [
                {
                    "traceId": trace_id, "spanId": parent, "name": "GET /cart", "kind": 2,
                    // int64 as a string (the OTLP JSON canonical form) ...
                    "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
                    "attributes": [
                        {"key": "http.status_code", "value": {"intValue": "201"}},
                        {"key": "retries", "value": {"intValue": 7}},
                        {"key": "ratio", "value": {"doubleValue": 0.25}},
                        {"key": "cached", "value": {"boolValue": true}},
                        {"key": "user", "value": {"stringValue": "ada"}}
                    ],
                    "events": [{"timeUnixNano": (start + 1000).to_string(), "name": "picked",
                                "attributes": [{"key": "n", "value": {"intValue": "2"}}]}],
                    "status": {"code": 1}
                },
                {
                    "traceId": trace_id, "spanId": child, "parentSpanId": parent, "name": "SELECT cart",
                    "kind": 3,
                    // ... and as plain numbers, as hand-written JSON often has.
                    "startTimeUnixNano": start + 1_000_000, "endTimeUnixNano": end - 1_000_000,
                    "status": {"code": 2, "message": "deadlock"}
                }
            ]
        }]
    }]})
}

fn logs_json(trace_id: &str, span_id: &str, body: &str) -> Value {
    let now = now_ns();
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl-shop"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": now.to_string(), "observedTimeUnixNano": now, "severityNumber": 17,
             "severityText": "ERROR", "body": {"stringValue": body}, "traceId": trace_id, "spanId": span_id,
             "attributes": [{"key": "attempt", "value": {"intValue": 3}}]}
        ]}]
    }]})
}

/// POST JSON (optionally gzip'd); must be 200 with a JSON body and nothing rejected.
fn post_json(url: &str, body: &Value, gzip: bool) {
    let bytes = serde_json::to_vec(body).unwrap();
    let reply = if gzip {
        otlp::post(url, JSON, Some("gzip"), otlp::gzip(&bytes))
    } else {
        otlp::post(url, JSON, None, bytes)
    };
    assert_eq!(reply.status, 200, "POST {url}: {}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with(JSON)),
        "a JSON request gets a JSON answer: {:?}",
        reply.headers
    );
    let answer: Value =
        serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()));
    let partial = &answer["partialSuccess"];
    let rejected = ["rejectedSpans", "rejectedLogRecords"]
        .iter()
        .map(|k| {
            partial[k]
                .as_i64()
                .or_else(|| partial[k].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0)
        })
        .sum::<i64>();
    assert_eq!(rejected, 0, "nothing rejected: {answer}");
}

fn send_and_check(gzip: bool) {
    let c = Collector::start_fast(&[]);
    let (trace_id, parent, child) = (
        hex(&new_trace_id()),
        hex(&new_span_id()),
        hex(&new_span_id()),
    );
    let body = format!("payment declined for cart {}", hex(&new_span_id()));
    post_json(
        &format!("{}/v1/traces", c.otlp_http_base()),
        &trace_json(&trace_id, &parent, &child),
        gzip,
    );
    post_json(
        &format!("{}/v1/logs", c.otlp_http_base()),
        &logs_json(&trace_id, &child, &body),
        gzip,
    );

    let api = c.api();
    let trace = api.wait_trace(&trace_id, 2);
    let root = trace.span("GET /cart");
    let db = trace.span("SELECT cart");
    assert_eq!(root.id(), parent);
    assert_eq!(db.parent().as_deref(), Some(parent.as_str()), "{}", db.0);
    assert_eq!(trace.service_of(&root), "curl-shop");
    assert_eq!(root.duration_us(), 250_000, "{}", root.0);
    assert_eq!(
        root.must_tag("http.status_code"),
        ("int64".into(), json!(201))
    );
    assert_eq!(root.must_tag("retries"), ("int64".into(), json!(7)));
    assert_eq!(root.must_tag("ratio"), ("float64".into(), json!(0.25)));
    assert_eq!(root.must_tag("cached"), ("bool".into(), json!(true)));
    assert_eq!(root.must_tag("user"), ("string".into(), json!("ada")));
    assert_eq!(root.must_tag("span.kind").1, json!("server"));
    assert_eq!(db.must_tag("span.kind").1, json!("client"));
    assert_eq!(
        db.must_tag("error"),
        ("bool".into(), json!(true)),
        "{}",
        db.0
    );
    assert_eq!(
        root.logs().len(),
        1,
        "the event is a Jaeger log: {}",
        root.0
    );

    let logs = api.wait_logs(&[("trace_id", &trace_id)], 1);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = &logs[0];
    assert_eq!(log["body"], body.as_str(), "{log}");
    assert_eq!(log["span_id"], child.as_str(), "{log}");
    assert_eq!(log["service"], "curl-shop", "{log}");
    assert_eq!(log["severity_number"], 17, "{log}");
}

#[test]
fn hand_written_json_is_accepted_and_queryable() {
    send_and_check(false);
}

#[test]
fn gzip_json_is_accepted_and_queryable() {
    send_and_check(true);
}

#[test]
fn gzip_protobuf_is_accepted_and_queryable() {
    let c = Collector::start_fast(&[]);
    let trace_id = new_trace_id();
    let span_id = new_span_id();
    let req = otlp::traces(
        "gzip-proto",
        vec![otlp::span(&trace_id, &span_id, "zipped")],
    );
    let reply = otlp::post(
        &format!("{}/v1/traces", c.otlp_http_base()),
        otlp::PROTOBUF,
        Some("gzip"),
        otlp::gzip(&prost::Message::encode_to_vec(&req)),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let trace = c.api().wait_trace(&hex(&trace_id), 1);
    assert_eq!(trace.span("zipped").id(), hex(&span_id));
}
