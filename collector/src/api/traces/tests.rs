//! Native trace API tests through the router (`oneshot`, no sockets) over
//! the in-memory store, plus the Jaeger API's view of the same traces
//! (placeholders, skew warnings).

use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::Status;
use serde_json::{json, Value as Json};

use crate::api::testing::*;
use crate::api::{router, ApiState};
use crate::query::SpanRecord;
use crate::traces::TraceSettings;

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn hex_sid(n: u8) -> String {
    hex::encode(sid(n))
}

fn hex_tid(n: u8) -> String {
    hex::encode(tid(n))
}

/// Trace 1: frontend SERVER 1 [0,100ms] → frontend CLIENT 2 [10,90] →
/// backend SERVER 3, whose clock is 2 s behind ([-1985,-1925] as sent) →
/// backend INTERNAL 4; and an orphan 6 (cache) whose parent 5 never arrived.
/// Trace 2: one span, another shape, for compare.
fn fixture() -> FakeTraces {
    let frontend = resource("frontend", vec![]);
    let backend = resource("backend", vec![]);
    let cache = resource("cache", vec![]);
    let at = |ms: i64| (T0 as i64 + ms * MS as i64) as u64;
    let mut root = span(1, 1, None, "GET /", at(0), at(100));
    root.attributes = vec![kv("http.method", s("GET"))];
    root.events = vec![Event {
        time_unix_nano: at(5),
        name: "start".into(),
        ..Default::default()
    }];
    let mut client = span(1, 2, Some(1), "call backend", at(10), at(90));
    client.kind = 3;
    let mut server = span(1, 3, Some(2), "handle", at(-1985), at(-1925));
    server.events = vec![Event {
        time_unix_nano: at(-1960),
        name: "work".into(),
        ..Default::default()
    }];
    server.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    let mut inner = span(1, 4, Some(3), "query", at(-1980), at(-1930));
    inner.kind = 1;
    inner.links = vec![Link {
        trace_id: tid(2).to_vec(),
        span_id: sid(9),
        ..Default::default()
    }];
    let orphan = span(1, 6, Some(5), "get", at(40), at(50));
    let other = span(2, 9, None, "GET /", at(1000), at(1050));
    FakeTraces {
        spans: vec![
            record(frontend.clone(), root),
            record(frontend.clone(), client),
            record(backend.clone(), server),
            record(backend, inner),
            record(cache, orphan),
            record(frontend, other),
        ],
        ..Default::default()
    }
}

fn app_with(settings: TraceSettings) -> TestApp {
    let t = app(fixture(), FakeLogs::default());
    let state: ApiState = t.state.clone().with_trace_settings(settings);
    TestApp {
        router: router(state.clone()),
        state,
        ..t
    }
}

fn span_of(v: &Json, n: u8) -> &Json {
    v["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["span_id"] == hex_sid(n)))
        .unwrap_or_else(|| panic!("no span {n} in {v}"))
}

#[tokio::test]
async fn trace_by_id_full_shape() {
    let app = app_with(TraceSettings::default());
    let a = app.get(&format!("/api/v1/traces/{}", hex_tid(1))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.headers
            .get("content-type")
            .map(|h| h.to_str().unwrap_or("")),
        Some("application/json")
    );
    let v = a.json();
    assert_eq!(v["trace_id"], hex_tid(1));
    assert_eq!(v["services"], json!(["backend", "cache", "frontend"]));
    assert_eq!(v["start_unix_nano"], T0);
    assert_eq!(v["duration_ns"], 100 * MS);
    assert_eq!(v["span_count"], 5);
    assert_eq!(v["error_count"], 1);
    assert_eq!(v["roots"], json!([hex_sid(1), hex_sid(5)]));
    assert_eq!(v["orphans"], json!([hex_sid(6)]));

    // Backend is shifted by +2005 ms into its client span, its child with it.
    let shift = 2005 * MS as i64;
    assert_eq!(
        v["adjustments"].as_array().map(|a| a.len()),
        Some(2),
        "{}",
        v["adjustments"]
    );
    assert_eq!(v["adjustments"][0]["span_id"], hex_sid(3));
    assert_eq!(v["adjustments"][0]["shift_ns"], shift);
    assert!(v["adjustments"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("client span"));
    assert_eq!(v["adjustments"][1]["span_id"], hex_sid(4));

    let server = span_of(&v, 3);
    assert_eq!(server["start_unix_nano"], T0 + 20 * MS);
    assert_eq!(server["end_unix_nano"], T0 + 80 * MS);
    assert_eq!(server["shift_ns"], shift);
    assert_eq!(
        server["warnings"],
        json!(["clock skew adjusted by 2005.000ms"])
    );
    assert_eq!(server["events"][0]["time_unix_nano"], T0 + 45 * MS);
    assert_eq!(server["status_code"], "ERROR");
    assert_eq!(server["status_message"], "boom");
    assert_eq!(server["service"], "backend");
    assert_eq!(server["kind"], "server");
    assert_eq!(server["parent_span_id"], hex_sid(2));
    assert_eq!(server["children"], json!([hex_sid(4)]));
    assert_eq!(server["resource"], json!({"service.name": "backend"}));

    let root = span_of(&v, 1);
    assert_eq!(root["parent_span_id"], Json::Null);
    assert_eq!(root["attributes"], json!({"http.method": "GET"}));
    assert_eq!(
        root["events"],
        json!([{"name": "start", "time_unix_nano": T0 + 5 * MS, "attributes": {}}])
    );
    assert_eq!(root["status_code"], "UNSET");
    assert_eq!(root["children"], json!([hex_sid(2)]));
    assert_eq!(root["warnings"], json!([]));
    assert!(root.get("missing").is_none());

    let inner = span_of(&v, 4);
    assert_eq!(inner["kind"], "internal");
    assert_eq!(
        inner["links"],
        json!([{"trace_id": hex_tid(2), "span_id": hex_sid(9), "ref_type": "FOLLOWS_FROM", "attributes": {}}])
    );

    let placeholder = span_of(&v, 5);
    assert_eq!(placeholder["missing"], true);
    assert_eq!(placeholder["name"], "missing span");
    assert_eq!(placeholder["service"], "");
    assert_eq!(placeholder["children"], json!([hex_sid(6)]));
    assert_eq!(placeholder["start_unix_nano"], T0 + 40 * MS);
    let orphan = span_of(&v, 6);
    assert_eq!(orphan["parent_span_id"], hex_sid(5));
    assert!(orphan["warnings"][0]
        .as_str()
        .unwrap_or("")
        .contains("never received"));

    // Root [0,100] → client [10,90] → server [20,80] → query [25,75]: the
    // cache orphan [40,50] runs in parallel and is not on the path.
    assert_eq!(
        v["critical_path"],
        json!([
            {"span_id": hex_sid(1), "self_ns": 20 * MS},
            {"span_id": hex_sid(2), "self_ns": 20 * MS},
            {"span_id": hex_sid(3), "self_ns": 10 * MS},
            {"span_id": hex_sid(4), "self_ns": 50 * MS},
        ])
    );
    // Spans are listed by start time.
    let starts: Vec<u64> = v["spans"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|x| x["start_unix_nano"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(starts.len(), 6);
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
}

#[tokio::test]
async fn summary_skips_span_bodies() {
    let app = app_with(TraceSettings::default());
    let v = app
        .get(&format!("/api/v1/traces/{}?fields=summary", hex_tid(1)))
        .await
        .json();
    assert!(v.get("spans").is_none(), "{v}");
    assert_eq!(v["span_count"], 5);
    assert_eq!(v["critical_path"].as_array().map(|c| c.len()), Some(4));
    let all = app
        .get(&format!("/api/v1/traces/{}?fields=all", hex_tid(1)))
        .await
        .json();
    assert_eq!(all["spans"].as_array().map(|s| s.len()), Some(6));
}

#[tokio::test]
async fn skew_adjustment_can_be_off() {
    let app = app_with(TraceSettings {
        clock_skew_adjust: false,
    });
    let v = app
        .get(&format!("/api/v1/traces/{}", hex_tid(1)))
        .await
        .json();
    assert_eq!(v["adjustments"], json!([]));
    let server = span_of(&v, 3);
    assert_eq!(server["start_unix_nano"], T0 - 1985 * MS);
    assert_eq!(server["warnings"], json!([]));
    let jaeger = app.get(&format!("/api/traces/{}", hex_tid(1))).await.json();
    let spans = jaeger["data"][0]["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let server = spans
        .iter()
        .find(|s| s["spanID"] == hex_sid(3))
        .expect("server span");
    assert_eq!(server["startTime"], (T0 - 1985 * MS) / 1000);
    assert_eq!(server["warnings"], Json::Null);
}

#[tokio::test]
async fn bad_requests() {
    let app = app_with(TraceSettings::default());
    for (uri, status, needle) in [
        ("/api/v1/traces/xyz", 400, "invalid parameter 'trace_id'"),
        (
            "/api/v1/traces/0123456789abcdef0123456789abcdef0",
            400,
            "trace_id",
        ),
        (
            "/api/v1/traces/00000000000000000000000000000042",
            404,
            "trace 00000000000000000000000000000042 not found",
        ),
        (
            "/api/v1/traces/42?fields=everything",
            400,
            "invalid parameter 'fields'",
        ),
        ("/api/v1/traces/compare", 400, "missing parameter 'a'"),
        ("/api/v1/traces/compare?a=42", 400, "missing parameter 'b'"),
        (
            "/api/v1/traces/compare?a=42&b=zz",
            400,
            "invalid parameter 'b'",
        ),
    ] {
        let a = app.get(uri).await;
        assert_native_error(&a, status, needle);
    }
    let a = app
        .get(&format!("/api/v1/traces/compare?a={}&b=77", hex_tid(1)))
        .await;
    assert_native_error(&a, 404, "trace 00000000000000000000000000000077 not found");
}

#[tokio::test]
async fn compare_two_traces() {
    let app = app_with(TraceSettings::default());
    let a = app
        .get(&format!(
            "/api/v1/traces/compare?a={}&b={}",
            hex_tid(1),
            hex_tid(2)
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["a"]["trace_id"], hex_tid(1));
    assert_eq!(v["a"]["span_count"], 5);
    assert_eq!(v["b"]["span_count"], 1);
    assert_eq!(v["b"]["duration_ns"], 50 * MS);
    let first = &v["paths"][0];
    assert_eq!(first["service"], "frontend");
    assert_eq!(first["operation"], "GET /");
    assert_eq!(first["parent"], Json::Null);
    assert_eq!(first["change"], "same");
    assert_eq!(first["duration_delta_ns"], -50 * MS as i64);
    assert_eq!(v["added"], 0);
    assert_eq!(
        v["removed"], 5,
        "client, server, query, placeholder, orphan: {v}"
    );
    let rows = v["paths"].as_array().cloned().unwrap_or_default();
    let handle = rows
        .iter()
        .find(|r| r["operation"] == "handle")
        .expect("handle row");
    assert_eq!(handle["depth"], 2);
    assert_eq!(handle["a_count"], 1);
    assert_eq!(handle["b_count"], 0);
    assert_eq!(handle["count_delta"], -1);
}

#[tokio::test]
async fn jaeger_shows_placeholders_and_skew_warnings() {
    let app = app_with(TraceSettings::default());
    let v = app.get(&format!("/api/traces/{}", hex_tid(1))).await.json();
    let t = &v["data"][0];
    let spans = t["spans"].as_array().cloned().unwrap_or_default();
    assert_eq!(spans.len(), 6);
    let find = |n: u8| {
        spans
            .iter()
            .find(|s| s["spanID"] == hex_sid(n))
            .unwrap_or_else(|| panic!("span {n} in {t}"))
            .clone()
    };
    let server = find(3);
    assert_eq!(server["startTime"], (T0 + 20 * MS) / 1000);
    assert_eq!(server["duration"], 60_000);
    assert_eq!(
        server["warnings"],
        json!(["clock skew adjusted by 2005.000ms"])
    );
    assert_eq!(server["logs"][0]["timestamp"], (T0 + 45 * MS) / 1000);

    let placeholder = find(5);
    assert_eq!(placeholder["operationName"], "missing span");
    assert_eq!(placeholder["references"], json!([]));
    assert!(placeholder["warnings"][0]
        .as_str()
        .unwrap_or("")
        .contains("was never received"));
    assert_eq!(
        placeholder["tags"],
        json!([{"key": "skein.missing_span", "type": "bool", "value": true}])
    );
    let pid = placeholder["processID"].as_str().unwrap_or("");
    assert_eq!(t["processes"][pid]["serviceName"], "unknown_service");
    let orphan = find(6);
    assert_eq!(orphan["references"][0]["spanID"], hex_sid(5));
    assert!(orphan["warnings"][0]
        .as_str()
        .unwrap_or("")
        .contains("never received"));

    // Search results are assembled the same way.
    let found = app.get("/api/traces?service=backend").await.json();
    let spans = found["data"][0]["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(spans.len(), 6);
    assert!(spans
        .iter()
        .any(|s| s["warnings"] == json!(["clock skew adjusted by 2005.000ms"])));
}

#[test]
fn a_trace_is_never_empty() {
    let records: Vec<SpanRecord> = Vec::new();
    assert!(crate::api::jaeger::convert::trace(records).is_none());
}
