//! Router-level tests with requests shaped like Grafana's Loki data source,
//! one per row of the contract's Loki table, over the in-memory fake store
//! (which exercises the generic `LogStore` label methods).

use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use serde_json::Value;

use crate::api::testing::{app, kv, log_row, s, FakeLogs, FakeTraces, TestApp};
use crate::query::LogRow;

const SEC: u64 = 1_000_000_000;
/// 2023-11-14T22:13:20Z
const T0: u64 = 1_700_000_000 * SEC;

fn with_trace(mut row: LogRow, trace: u8) -> LogRow {
    row.record.trace_id = vec![trace; 16];
    row.record.span_id = vec![trace; 8];
    row
}

fn fixture() -> TestApp {
    let rows = vec![
        with_trace(
            log_row("api", T0 + 10 * SEC, 9, s("GET /orders 200"), vec![]),
            1,
        ),
        log_row(
            "api",
            T0 + 20 * SEC,
            17,
            s(r#"{"status":500,"path":"/pay","took":"1.5s"}"#),
            vec![kv("code.function", s("pay"))],
        ),
        log_row(
            "api",
            T0 + 70 * SEC,
            13,
            s("level=warn msg=\"slow db\" ms=900"),
            vec![],
        ),
        log_row("db", T0 + 30 * SEC, 9, s("checkpoint done"), vec![]),
        log_row("db", T0 + 80 * SEC, 0, s("no severity"), vec![]),
    ];
    let logs = FakeLogs {
        rows,
        ..FakeLogs::default()
    };
    app(FakeTraces::default(), logs)
}

fn enc(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn range_uri(q: &str, extra: &str) -> String {
    format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}{extra}",
        enc(q),
        T0,
        T0 + 120 * SEC
    )
}

async fn ok(app: &TestApp, uri: &str) -> Value {
    let a = app.get(uri).await;
    assert_eq!(a.status, 200, "{uri}: {}", a.text());
    let v = a.json();
    assert_eq!(v["status"], "success", "{}", a.text());
    v
}

fn lines(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stream in v["data"]["result"].as_array().expect("result array") {
        for value in stream["values"].as_array().expect("values") {
            out.push((
                value[0].as_str().expect("ns string").to_string(),
                value[1].as_str().expect("line").to_string(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn health_check_vector_plus_vector_is_two() {
    let app = fixture();
    let v = ok(
        &app,
        &format!("/loki/api/v1/query?query=vector(1)%2Bvector(1)&time={T0}"),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "vector");
    let r = &v["data"]["result"];
    assert_eq!(r.as_array().map(Vec::len), Some(1));
    assert_eq!(r[0]["metric"], serde_json::json!({}));
    assert_eq!(r[0]["value"][1], "2");
    assert_eq!(r[0]["value"][0].as_f64(), Some(1_700_000_000.0));
}

#[tokio::test]
async fn query_range_streams_backward_forward_and_limit() {
    let app = fixture();
    let v = ok(
        &app,
        &range_uri(r#"{service_name="api"}"#, "&limit=2&direction=backward"),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "streams");
    let mut got = lines(&v);
    assert_eq!(got.len(), 2, "limit");
    got.sort();
    assert_eq!(
        got[0].0,
        (T0 + 20 * SEC).to_string(),
        "newest two, ns strings"
    );
    assert_eq!(got[1].0, (T0 + 70 * SEC).to_string());

    let v = ok(
        &app,
        &range_uri(r#"{service_name="api"}"#, "&limit=1&direction=forward"),
    )
    .await;
    assert_eq!(
        lines(&v),
        vec![((T0 + 10 * SEC).to_string(), "GET /orders 200".into())]
    );
    // without categorize-labels, structured metadata is part of the stream labels
    let stream = &v["data"]["result"][0]["stream"];
    assert_eq!(stream["service_name"], "api");
    assert_eq!(stream["level"], "info");
    assert_eq!(stream["trace_id"], "01010101010101010101010101010101");
    assert!(v["data"].get("encodingFlags").is_none());
}

#[tokio::test]
async fn categorize_labels_puts_metadata_third_and_flags_first() {
    let app = fixture();
    let request = axum::http::Request::builder()
        .uri(range_uri(r#"{service_name="api"} |= "orders""#, ""))
        .header("X-Loki-Response-Encoding-Flags", "categorize-labels")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body).to_string();
    let flags = text.find("\"encodingFlags\"").expect("flags present");
    let result = text.find("\"result\"").expect("result present");
    assert!(flags < result, "encodingFlags must precede result: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["data"]["encodingFlags"],
        serde_json::json!(["categorize-labels"])
    );
    let stream = &v["data"]["result"][0];
    assert_eq!(
        stream["stream"],
        serde_json::json!({"level":"info","service_name":"api"})
    );
    for value in stream["values"].as_array().unwrap() {
        assert_eq!(value.as_array().unwrap().len(), 3);
        let md = &value[2]["structuredMetadata"];
        assert_eq!(md["trace_id"], "01010101010101010101010101010101");
        assert_eq!(md["span_id"], "0101010101010101");
        assert_eq!(md["detected_level"], "info");
        assert!(value[2]["parsed"].is_object());
    }
}

#[tokio::test]
async fn explore_volume_query_groups_by_level() {
    let app = fixture();
    let q = r#"sum by (level, detected_level) (count_over_time({service_name=~".+"} | drop __error__[1m]))"#;
    let v = ok(&app, &range_uri(q, "&step=60")).await;
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    let mut by_level = std::collections::BTreeMap::new();
    for series in result {
        let level = series["metric"]["level"].as_str().unwrap().to_string();
        assert_eq!(
            series["metric"]["detected_level"],
            series["metric"]["level"]
        );
        let total: f64 = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert!(p[0].is_number(), "float seconds");
                p[1].as_str().unwrap().parse::<f64>().unwrap()
            })
            .sum();
        by_level.insert(level, total);
    }
    // windows of 1m at steps T0, T0+60, T0+120 cover (T0-60, T0+120]
    assert_eq!(by_level.get("info"), Some(&2.0));
    assert_eq!(by_level.get("error"), Some(&1.0));
    assert_eq!(by_level.get("warn"), Some(&1.0));
    assert_eq!(by_level.get("unknown"), Some(&1.0));
}

#[tokio::test]
async fn metric_queries_for_dashboards() {
    let app = fixture();
    let q = r#"sum by (service_name) (rate({service_name=~"api|db"}[2m]))"#;
    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            T0 + 120 * SEC
        ),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "vector");
    let r = v["data"]["result"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["metric"]["service_name"], "api");
    assert_eq!(r[0]["value"][1], "0.025", "3 lines / 120 s");

    let q = r#"topk(1, sum by (service_name) (count_over_time({level=~"info|error|warn|unknown"}[5m])))"#;
    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            T0 + 120 * SEC
        ),
    )
    .await;
    let r = v["data"]["result"].as_array().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["metric"]["service_name"], "api");

    let q = r#"sum(count_over_time({service_name="api"} | json | status >= 500 [5m]))"#;
    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            T0 + 120 * SEC
        ),
    )
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "1");

    let q = r#"count_over_time({service_name="api"} | logfmt | ms > 500 [5m])"#;
    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            T0 + 120 * SEC
        ),
    )
    .await;
    let r = v["data"]["result"].as_array().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["metric"]["msg"], "slow db");
}

#[tokio::test]
async fn pipeline_errors_in_metrics_are_400_unless_dropped() {
    let app = fixture();
    let q = r#"sum(count_over_time({service_name="api"} | json [5m]))"#;
    let a = app
        .get(&format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            T0 + 120 * SEC
        ))
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("JSONParserErr"));
    let q = r#"sum(count_over_time({service_name="api"} | json | __error__="" [5m]))"#;
    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            T0 + 120 * SEC
        ),
    )
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
}

#[tokio::test]
async fn line_filters_and_label_filters_on_logs() {
    let app = fixture();
    let v = ok(
        &app,
        &range_uri(r#"{service_name="api"} |~ "GET|slow" != "orders""#, ""),
    )
    .await;
    assert_eq!(lines(&v).len(), 1);
    let v = ok(
        &app,
        &range_uri(r#"{service_name="api"} | code_function="pay""#, ""),
    )
    .await;
    assert_eq!(lines(&v).len(), 1);
    let v = ok(
        &app,
        &range_uri(
            r#"{service_name="api"} | trace_id="01010101010101010101010101010101""#,
            "",
        ),
    )
    .await;
    assert_eq!(
        lines(&v),
        vec![((T0 + 10 * SEC).to_string(), "GET /orders 200".into())]
    );
}

#[tokio::test]
async fn unsupported_and_bad_queries_answer_loki_errors() {
    let app = fixture();
    for (q, status, needle) in [
        (
            r#"{service_name="api"} | line_format "{{.x}}""#,
            400,
            "line_format",
        ),
        (
            r#"avg_over_time({a="b"} | unwrap x [1m])"#,
            400,
            "avg_over_time",
        ),
        (r#"{service_name="api""#, 400, "parse error"),
    ] {
        let a = app.get(&range_uri(q, "")).await;
        assert_eq!(a.status.as_u16(), status, "{q}: {}", a.text());
        let v = a.json();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().contains(needle), "{q}: {v}");
    }
    let a = app.get("/loki/api/v1/query_range").await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("query"));
    let a = app.get(&range_uri(r#"{a="b"}"#, "&limit=6000")).await;
    assert_eq!(a.status, 400);
    let a = app
        .get(&range_uri(r#"{a="b"}"#, "&direction=sideways"))
        .await;
    assert_eq!(a.status, 400);
    let a = app.get("/loki/api/v1/detected_fields").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["status"], "error");
}

#[tokio::test]
async fn label_browser_lookups() {
    let app = fixture();
    let w = format!("start={}&end={}", T0, T0 + 120 * SEC);
    let v = ok(&app, &format!("/loki/api/v1/labels?{w}")).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in ["service_name", "level", "detected_level", "code_function"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(!names.contains(&"trace_id"));

    let v = ok(&app, &format!("/loki/api/v1/label/service_name/values?{w}")).await;
    assert_eq!(v["data"], serde_json::json!(["api", "db"]));
    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/label/level/values?{w}&query={}",
            enc(r#"{service_name="db"}"#)
        ),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["info", "unknown"]));

    let v = ok(
        &app,
        &format!(
            "/loki/api/v1/series?{w}&match[]={}",
            enc(r#"{service_name="db"}"#)
        ),
    )
    .await;
    assert_eq!(
        v["data"],
        serde_json::json!([
            {"level":"info","service_name":"db"},
            {"level":"unknown","service_name":"db"}
        ])
    );

    let a = app
        .get(&format!(
            "/loki/api/v1/index/stats?{w}&query={}",
            enc(r#"{service_name="api"}"#)
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["entries"], 3);
    assert_eq!(v["streams"], 3);
    assert!(v["bytes"].as_u64().unwrap() > 20);
    assert!(v["chunks"].is_number());
}

#[tokio::test]
async fn int_and_map_bodies_become_lines() {
    let rows = vec![log_row("api", T0 + SEC, 9, V::IntValue(42), vec![])];
    let app = app(
        FakeTraces::default(),
        FakeLogs {
            rows,
            ..FakeLogs::default()
        },
    );
    let v = ok(&app, &range_uri(r#"{service_name="api"}"#, "")).await;
    assert_eq!(lines(&v), vec![((T0 + SEC).to_string(), "42".into())]);
}
