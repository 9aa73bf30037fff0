//! The dependency endpoints through the router: Jaeger and native shapes,
//! windows, defaults, bad parameters, and the graph turned off.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;

use crate::api::testing::*;
use crate::api::{router, ApiExtra};
use crate::derive::dependencies::{ConnType, DependencyGraph, Edge};
use crate::derive::Derived;
use crate::index::ManualClock;

const MIN_NS: u64 = 60_000_000_000;

struct Rig {
    app: TestApp,
    now_ms: u64,
    _dir: tempfile::TempDir,
}

/// a → b twice (one failed, 10 ms and 30 ms) at now − 2 min, a → b and
/// b → db (database) at now − 90 min.
fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let clock = Arc::new(ManualClock::new(now));
    let graph = DependencyGraph::open(
        dir.path().to_path_buf(),
        Duration::from_secs(86_400),
        100,
        clock,
    )
    .unwrap();
    let now_ns = now.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let names = ["a", "b", "db"];
    let edge = |client, server, conn, ago_min: u64, ms: u64, failed| Edge {
        client,
        server,
        conn,
        start_ns: now_ns - ago_min * MIN_NS,
        client_ns: Some(ms * 1_000_000),
        server_ns: None,
        failed,
        lsn: 1,
    };
    graph.record(
        &[
            edge(0, 1, ConnType::Direct, 2, 10, true),
            edge(0, 1, ConnType::Direct, 2, 30, false),
            edge(0, 1, ConnType::Direct, 90, 5, false),
            edge(1, 2, ConnType::Database, 90, 5, false),
        ],
        |i| Arc::from(names[i as usize]),
    );
    let mut app = app(FakeTraces::default(), FakeLogs::default());
    app.state = app.state.clone().with_extra(ApiExtra {
        derived: Some(Derived { graph }),
        ..Default::default()
    });
    app.router = router(app.state.clone());
    Rig {
        app,
        now_ms: now_ns / 1_000_000,
        _dir: dir,
    }
}

#[tokio::test]
async fn jaeger_shape_and_window() {
    let r = rig();
    let a = r.app.get("/api/dependencies").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(
        v["data"],
        serde_json::json!([
            {"parent": "a", "child": "b", "callCount": 3},
            {"parent": "b", "child": "db", "callCount": 1},
        ])
    );
    assert_eq!(v["errors"], serde_json::Value::Null);
    // Last 10 minutes only.
    let uri = format!("/api/dependencies?endTs={}&lookback=600000", r.now_ms);
    let v = r.app.get(&uri).await.json();
    assert_eq!(
        v["data"],
        serde_json::json!([{"parent": "a", "child": "b", "callCount": 2}])
    );
    // A window with nothing in it.
    let uri = format!(
        "/api/dependencies?endTs={}&lookback=60000",
        r.now_ms - 30 * 60_000
    );
    assert_eq!(r.app.get(&uri).await.json()["data"], serde_json::json!([]));
}

#[tokio::test]
async fn native_counts_errors_and_latency() {
    let r = rig();
    let start = (r.now_ms - 10 * 60_000) * 1_000_000;
    let v = r
        .app
        .get(&format!("/api/v1/dependencies?start={start}"))
        .await
        .json();
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{v}");
    let e = &edges[0];
    assert_eq!(
        (e["parent"].as_str(), e["child"].as_str()),
        (Some("a"), Some("b"))
    );
    assert_eq!(
        (e["call_count"].as_u64(), e["error_count"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(e["connection_type"], "");
    let p50 = e["latency_p50_ms"].as_f64().unwrap();
    let p99 = e["latency_p99_ms"].as_f64().unwrap();
    assert!(
        (p50 - 10.0).abs() < 0.6 && (p99 - 30.0).abs() < 1.6,
        "{p50} {p99}"
    );
    assert_eq!(v["start_unix_nano"].as_u64(), Some(start));

    let v = r
        .app
        .get("/api/v1/dependencies?start=2020-01-01T00:00:00Z&end=2100-01-01T00:00:00Z")
        .await
        .json();
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[1]["connection_type"], "database");
}

#[tokio::test]
async fn bad_parameters_are_400_naming_them() {
    let r = rig();
    assert_jaeger_error(
        &r.app.get("/api/dependencies?endTs=soon").await,
        400,
        "endTs",
    );
    assert_jaeger_error(
        &r.app.get("/api/dependencies?lookback=-5").await,
        400,
        "lookback",
    );
    assert_jaeger_error(
        &r.app.get("/api/dependencies?endTs=99999999999999999").await,
        400,
        "endTs",
    );
    assert_native_error(
        &r.app.get("/api/v1/dependencies?start=yesterday").await,
        400,
        "start",
    );
    assert_native_error(
        &r.app.get("/api/v1/dependencies?start=200&end=100").await,
        400,
        "start",
    );
}

#[tokio::test]
async fn turned_off_is_404() {
    let app = app(FakeTraces::default(), FakeLogs::default());
    assert_jaeger_error(&app.get("/api/dependencies").await, 404, "--derive=false");
    assert_native_error(
        &app.get("/api/v1/dependencies").await,
        404,
        "--derive=false",
    );
}
