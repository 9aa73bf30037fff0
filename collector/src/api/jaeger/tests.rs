//! Jaeger API tests: every endpoint through the router (`oneshot`, no
//! sockets) over in-memory stores built from real OTLP structs, plus the
//! OTLP → Jaeger conversion rules one by one.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::Status;
use serde_json::{json, Value as Json};

use super::convert;
use crate::api::testing::*;
use crate::query::{QueryError, SpanRecord, TraceQuery};

const T0: u64 = 1_700_000_000_000_000_000;

/// Trace 1 (frontend → backend, error root), trace 2 (newer, one span),
/// a trace with a short id, and a span of "my svc" and "a/b".
fn fixture() -> FakeTraces {
    let frontend = resource(
        "frontend",
        vec![kv("host.name", s("web-1")), kv("pid", Value::IntValue(42))],
    );
    // Same attributes, different order: the same process.
    let frontend_again = resource(
        "frontend",
        vec![kv("pid", Value::IntValue(42)), kv("host.name", s("web-1"))],
    );
    let backend = resource("backend", vec![kv("host.name", s("db-1"))]);

    let mut root = span(1, 1, None, "GET /users", T0 + 1_500, T0 + 2_501_500);
    root.flags = 0x301;
    root.attributes = vec![
        kv("http.method", s("GET")),
        kv("http.status_code", Value::IntValue(500)),
        kv("retry", Value::BoolValue(true)),
        kv("ratio", Value::DoubleValue(0.25)),
        kv("raw", Value::BytesValue(vec![1, 2, 3])),
        kv(
            "list",
            Value::ArrayValue(ArrayValue {
                values: vec![any(s("a")), any(Value::IntValue(2))],
            }),
        ),
        kv(
            "map",
            Value::KvlistValue(KeyValueList {
                values: vec![kv("k", s("v"))],
            }),
        ),
        kv("nan", Value::DoubleValue(f64::NAN)),
    ];
    root.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    root.events = vec![
        Event {
            time_unix_nano: T0 + 2_000_999,
            name: "exception".into(),
            attributes: vec![kv("exception.message", s("bad thing"))],
            ..Default::default()
        },
        Event {
            time_unix_nano: T0 + 1_000_000,
            name: "started".into(),
            ..Default::default()
        },
    ];

    let mut child = span(1, 2, Some(1), "SELECT users", T0 + 500_000, T0 + 1_500_000);
    child.kind = 3;
    child.status = Some(Status {
        code: 1,
        message: String::new(),
    });
    child.links = vec![Link {
        trace_id: tid(9).to_vec(),
        span_id: sid(7),
        ..Default::default()
    }];

    let mut sibling = span(1, 3, Some(1), "render", T0 + 1_600_000, T0 + 1_700_000);
    sibling.kind = 0;
    sibling.trace_state = "vendor=x".into();

    let newer = span(
        2,
        1,
        None,
        "POST /orders",
        T0 + 10_000_000_000,
        T0 + 10_005_000_000,
    );

    let mut short = span(3, 1, None, "short", T0, T0 + 1_000);
    short.trace_id = {
        let mut id = vec![0u8; 16];
        id[14] = 0x12;
        id[15] = 0x34;
        id
    };

    FakeTraces {
        spans: vec![
            record(backend, child.clone()),
            scoped(frontend.clone(), "io.opentelemetry.http", "1.2.3", root),
            record(frontend_again, sibling),
            record(frontend.clone(), newer),
            record(resource("my svc", vec![]), short),
            record(
                resource("a/b", vec![]),
                span(4, 1, None, "slash", T0, T0 + 1),
            ),
        ],
        ..Default::default()
    }
}

fn any(v: Value) -> opentelemetry_proto::tonic::common::v1::AnyValue {
    opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(v) }
}

fn hex_tid(n: u8) -> String {
    hex::encode(tid(n))
}

fn tag<'a>(span: &'a Json, key: &str) -> &'a Json {
    span["tags"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["key"] == key))
        .unwrap_or(&Json::Null)
}

// ---- services and operations ----

#[tokio::test]
async fn services_answer_jaeger_envelope() {
    let app = app(fixture(), FakeLogs::default());
    let a = app.get("/api/services").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        json!({"data": ["a/b", "backend", "frontend", "my svc"], "total": 4, "limit": 0, "offset": 0, "errors": null})
    );
    let empty = crate::api::testing::app(FakeTraces::default(), FakeLogs::default());
    assert_eq!(empty.get("/api/services").await.json()["data"], json!([]));
}

#[tokio::test]
async fn service_operations_are_plain_strings_and_path_is_decoded() {
    let app = app(fixture(), FakeLogs::default());
    let a = app.get("/api/services/frontend/operations").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["data"],
        json!(["GET /users", "POST /orders", "render"])
    );
    assert_eq!(a.json()["total"], 3);
    assert_eq!(
        app.get("/api/services/my%20svc/operations").await.json()["data"],
        json!(["short"])
    );
    assert_eq!(
        app.get("/api/services/a%2Fb/operations").await.json()["data"],
        json!(["slash"])
    );
    assert_eq!(
        app.get("/api/services/nobody/operations").await.json()["data"],
        json!([])
    );
}

#[tokio::test]
async fn operations_with_span_kind() {
    let app = app(fixture(), FakeLogs::default());
    let a = app.get("/api/operations?service=frontend").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["data"],
        json!([
            {"name": "GET /users", "spanKind": "server"},
            {"name": "POST /orders", "spanKind": "server"},
            {"name": "render", "spanKind": ""},
        ])
    );
    let a = app
        .get("/api/operations?service=backend&spanKind=client")
        .await;
    assert_eq!(
        a.json()["data"],
        json!([{"name": "SELECT users", "spanKind": "client"}])
    );
    assert_eq!(
        app.get("/api/operations?service=backend&spanKind=server")
            .await
            .json()["data"],
        json!([])
    );
    assert_jaeger_error(&app.get("/api/operations").await, 400, "'service'");
    assert_jaeger_error(
        &app.get("/api/operations?service=x&spanKind=up").await,
        400,
        "'spanKind'",
    );
}

// ---- trace by id ----

#[tokio::test]
async fn trace_by_id_full_shape() {
    let app = app(fixture(), FakeLogs::default());
    let a = app.get(&format!("/api/traces/{}", hex_tid(1))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["errors"], Json::Null);
    let data = v["data"].as_array().expect("data array");
    assert_eq!(data.len(), 1);
    let t = &data[0];
    assert_eq!(t["traceID"], hex_tid(1));
    assert_eq!(t["warnings"], Json::Null);

    // Spans sorted by start time: root (+1.5 µs), child (+0.5 ms), sibling (+1.6 ms).
    let spans = t["spans"].as_array().expect("spans");
    let names: Vec<&str> = spans
        .iter()
        .map(|s| s["operationName"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["GET /users", "SELECT users", "render"]);

    let root = &spans[0];
    assert_eq!(root["traceID"], hex_tid(1));
    assert_eq!(root["spanID"], "1000000000000001");
    assert_eq!(root["flags"], 1);
    assert_eq!(root["startTime"], T0 / 1_000 + 1);
    assert_eq!(root["duration"], 2_500);
    assert_eq!(root["references"], json!([]));
    assert_eq!(root["warnings"], Json::Null);
    assert_eq!(
        root["tags"],
        json!([
            {"key": "http.method", "type": "string", "value": "GET"},
            {"key": "http.status_code", "type": "int64", "value": 500},
            {"key": "retry", "type": "bool", "value": true},
            {"key": "ratio", "type": "float64", "value": 0.25},
            {"key": "raw", "type": "binary", "value": "AQID"},
            {"key": "list", "type": "string", "value": "[\"a\",2]"},
            {"key": "map", "type": "string", "value": "{\"k\":\"v\"}"},
            {"key": "nan", "type": "string", "value": "NaN"},
            {"key": "span.kind", "type": "string", "value": "server"},
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "otel.status_description", "type": "string", "value": "boom"},
            {"key": "error", "type": "bool", "value": true},
            {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.http"},
            {"key": "otel.scope.version", "type": "string", "value": "1.2.3"},
        ])
    );
    // Events → logs, in time order, µs.
    assert_eq!(
        root["logs"],
        json!([
            {"timestamp": T0 / 1_000 + 1_000, "fields": [{"key": "event", "type": "string", "value": "started"}]},
            {"timestamp": T0 / 1_000 + 2_000, "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.message", "type": "string", "value": "bad thing"},
            ]},
        ])
    );

    let child = &spans[1];
    assert_eq!(
        child["references"],
        json!([
            {"refType": "CHILD_OF", "traceID": hex_tid(1), "spanID": "1000000000000001"},
            {"refType": "FOLLOWS_FROM", "traceID": hex_tid(9), "spanID": "1000000000000007"},
        ])
    );
    assert_eq!(tag(child, "span.kind")["value"], "client");
    assert_eq!(tag(child, "otel.status_code")["value"], "OK");
    assert_eq!(tag(child, "error"), &Json::Null);
    assert_eq!(tag(child, "otel.status_description"), &Json::Null);
    assert_eq!(child["duration"], 1_000);

    let sibling = &spans[2];
    assert_eq!(
        tag(sibling, "span.kind"),
        &Json::Null,
        "unspecified kind is omitted"
    );
    assert_eq!(
        tag(sibling, "otel.status_code"),
        &Json::Null,
        "unset status is omitted"
    );
    assert_eq!(tag(sibling, "w3c.tracestate")["value"], "vendor=x");

    // Processes: frontend (both attribute orders) = p1, backend = p2.
    assert_eq!(root["processID"], "p1");
    assert_eq!(sibling["processID"], "p1");
    assert_eq!(child["processID"], "p2");
    assert_eq!(
        t["processes"],
        json!({
            "p1": {"serviceName": "frontend", "tags": [
                {"key": "host.name", "type": "string", "value": "web-1"},
                {"key": "pid", "type": "int64", "value": 42},
            ]},
            "p2": {"serviceName": "backend", "tags": [
                {"key": "host.name", "type": "string", "value": "db-1"},
            ]},
        })
    );
}

#[tokio::test]
async fn trace_id_validation() {
    let app = app(fixture(), FakeLogs::default());
    // Short ids are left-padded; upper case is fine.
    let a = app.get("/api/traces/1234").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.json()["data"][0]["traceID"],
        "00000000000000000000000000001234"
    );
    assert_eq!(
        app.get(&format!("/api/traces/{}", hex_tid(1).to_uppercase()))
            .await
            .status,
        200
    );

    for bad in [
        "xyz",
        "0x1234",
        "123456789012345678901234567890123",
        "12%2034",
    ] {
        assert_jaeger_error(
            &app.get(&format!("/api/traces/{bad}")).await,
            400,
            "'traceID'",
        );
    }
    let unknown = app
        .get("/api/traces/ffffffffffffffffffffffffffffffff")
        .await;
    assert_jaeger_error(&unknown, 404, "not found");
}

#[tokio::test]
async fn trace_by_id_ignores_the_window_in_ms_or_us() {
    let app = app(fixture(), FakeLogs::default());
    let id = hex_tid(1);
    for q in [
        "start=1700000000000&end=1700000001000", // ms (current Grafana)
        "start=1700000000000000&end=1700000001000000", // µs (Jaeger, older Grafana)
        "start=1&end=2",                         // a window that misses the trace
        "start=9999999999999999&end=1",          // nonsense
        "start=&end=",
    ] {
        let a = app.get(&format!("/api/traces/{id}?{q}")).await;
        assert_eq!(a.status, 200, "{q}: {}", a.text());
        assert_eq!(a.json()["data"][0]["traceID"], id);
    }
}

// ---- search ----

#[tokio::test]
async fn search_newest_first_and_never_empty() {
    let mut store = fixture();
    store.phantom_ids = vec![tid(77)];
    let app = app(store, FakeLogs::default());
    let a = app.get("/api/traces?service=frontend").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let data = a.json()["data"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = data
        .iter()
        .map(|t| t["traceID"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        ids,
        [hex_tid(2), hex_tid(1)],
        "newest first, phantom trace dropped"
    );
    for t in &data {
        assert!(!t["spans"].as_array().expect("spans").is_empty());
        assert!(t["processes"].is_object());
    }
    let q = app.traces.last_query.lock().clone().expect("searched");
    assert_eq!(
        q,
        TraceQuery {
            service: Some("frontend".into()),
            limit: 20,
            ..Default::default()
        }
    );

    // Without service (optional here, unlike Jaeger): everything.
    let all = app.get("/api/traces").await.json();
    assert_eq!(all["data"].as_array().map(Vec::len), Some(4));

    // Only phantoms → empty list, still 200.
    let mut only_phantoms = FakeTraces {
        phantom_ids: vec![tid(5), tid(6)],
        ..Default::default()
    };
    only_phantoms.spans.clear();
    let app2 = crate::api::testing::app(only_phantoms, FakeLogs::default());
    let a = app2.get("/api/traces?limit=5").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["data"], json!([]));
}

#[tokio::test]
async fn search_passes_every_parameter_to_the_store() {
    let app = app(fixture(), FakeLogs::default());
    // Exactly what Grafana sends (tags as URL-encoded JSON).
    let uri = "/api/traces?service=frontend&operation=GET%20%2Fusers\
               &tags=%7B%22error%22%3A%22true%22%2C%22http.status_code%22%3A%22500%22%7D\
               &minDuration=1.2ms&maxDuration=1s&limit=7&start=1700000000000000&end=1700000100000000";
    let a = app.get(uri).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["data"].as_array().map(Vec::len), Some(1));
    let q = app.traces.last_query.lock().clone().expect("searched");
    assert_eq!(
        q,
        TraceQuery {
            service: Some("frontend".into()),
            operation: Some("GET /users".into()),
            tags: vec![
                ("error".into(), "true".into()),
                ("http.status_code".into(), "500".into())
            ],
            min_duration_ns: Some(1_200_000),
            max_duration_ns: Some(1_000_000_000),
            start_unix_nano: Some(T0),
            end_unix_nano: Some(T0 + 100_000_000_000),
            limit: 7,
        }
    );

    // logfmt tags and Jaeger's repeated tag=k:v.
    app.get(
        "/api/traces?tags=error%3Dtrue%20http.status_code%3D500&tag=peer%3Adb%3A5432&limit=99999",
    )
    .await;
    let q = app.traces.last_query.lock().clone().expect("searched");
    assert_eq!(
        q.tags,
        vec![
            ("error".to_string(), "true".to_string()),
            ("http.status_code".into(), "500".into()),
            ("peer".into(), "db:5432".into()),
        ]
    );
    assert_eq!(q.limit, 1500);
}

#[tokio::test]
async fn search_by_trace_ids() {
    let app = app(fixture(), FakeLogs::default());
    let a = app
        .get(&format!("/api/traces?traceID={}&traceID=ffff", hex_tid(1)))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["data"].as_array().map(Vec::len), Some(1));
    assert!(
        app.traces.last_query.lock().is_none(),
        "no search for explicit ids"
    );
}

#[tokio::test]
async fn bad_search_parameters_answer_400_naming_them() {
    let app = app(fixture(), FakeLogs::default());
    let cases = [
        ("limit=abc", "'limit'"),
        ("limit=-3", "'limit'"),
        ("start=abc", "'start'"),
        ("end=1.5", "'end'"),
        ("start=2000&end=1000", "'end'"),
        ("minDuration=abc", "'minDuration'"),
        ("maxDuration=10", "'maxDuration'"),
        ("minDuration=1s&maxDuration=500ms", "'maxDuration'"),
        ("tags=%7Bbroken", "'tags'"),
        ("tags=%7B%22a%22%3A%5B1%5D%7D", "'tags'"),
        ("tags=a%3D%22open", "'tags'"),
        ("tag=nocolon", "'tag'"),
        ("traceID=xyz", "'traceID'"),
    ];
    for (q, name) in cases {
        let a = app.get(&format!("/api/traces?{q}")).await;
        assert_jaeger_error(&a, 400, name);
    }
}

#[tokio::test]
async fn store_errors_map_to_jaeger_errors() {
    let store = FakeTraces {
        fail: Some(|| QueryError::Storage("disk on fire".into())),
        ..fixture()
    };
    let app = app(store, FakeLogs::default());
    assert_jaeger_error(&app.get("/api/services").await, 500, "disk on fire");
    assert_jaeger_error(&app.get("/api/traces?service=x").await, 500, "disk on fire");
    assert_jaeger_error(
        &app.get(&format!("/api/traces/{}", hex_tid(1))).await,
        500,
        "disk on fire",
    );

    let store = FakeTraces {
        fail: Some(|| QueryError::Invalid("bad tag".into())),
        ..fixture()
    };
    let app = crate::api::testing::app(store, FakeLogs::default());
    assert_jaeger_error(&app.get("/api/traces?service=x").await, 400, "bad tag");
}

// ---- conversion rules ----

#[test]
fn empty_trace_converts_to_none() {
    assert!(convert::trace(Vec::new()).is_none());
}

#[test]
fn error_attribute_is_overridden_by_error_status_and_duplicates_dropped() {
    let mut sp = span(1, 1, None, "op", 3_000, 1_000); // end before start
    sp.attributes = vec![kv("error", s("no"))];
    sp.status = Some(Status {
        code: 2,
        message: String::new(),
    });
    let rec = record(resource("svc", vec![]), sp);
    let t = convert::trace(vec![rec.clone(), rec]).expect("trace");
    assert_eq!(t.spans.len(), 1, "exact duplicate dropped");
    let v = serde_json::to_value(&t.spans[0]).expect("json");
    assert_eq!(v["duration"], 0, "never negative");
    let errors: Vec<&Json> = v["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter(|t| t["key"] == "error")
        .collect();
    assert_eq!(
        errors,
        [&json!({"key": "error", "type": "bool", "value": true})]
    );
}

#[test]
fn missing_service_and_zero_parent_and_short_ids() {
    let mut sp = span(1, 1, None, "op", 1_000, 2_000);
    sp.parent_span_id = vec![0; 8];
    sp.span_id = vec![0x01];
    let rec = SpanRecord {
        resource: Default::default(),
        scope: None,
        span: sp,
    };
    let t = convert::trace(vec![rec]).expect("trace");
    assert_eq!(
        t.spans[0].references,
        vec![],
        "all-zero parent is no parent"
    );
    assert_eq!(t.spans[0].span_id, "0000000000000001");
    assert_eq!(
        t.processes.get("p1").map(|p| p.service_name.as_str()),
        Some("unknown_service")
    );
}

#[test]
fn processes_dedup_by_service_and_tags() {
    let a = resource("svc", vec![kv("host", s("1"))]);
    let b = resource("svc", vec![kv("host", s("2"))]);
    let c = resource("other", vec![kv("host", s("1"))]);
    let t = convert::trace(vec![
        record(a.clone(), span(1, 1, None, "x", 1, 2)),
        record(b, span(1, 2, None, "x", 2, 3)),
        record(c, span(1, 3, None, "x", 3, 4)),
        record(a, span(1, 4, None, "x", 4, 5)),
    ])
    .expect("trace");
    let pids: Vec<&str> = t.spans.iter().map(|s| s.process_id.as_str()).collect();
    assert_eq!(pids, ["p1", "p2", "p3", "p1"]);
    assert_eq!(t.processes.0.len(), 3);
}
