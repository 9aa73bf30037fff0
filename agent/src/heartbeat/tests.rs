//! The heartbeat loop against a small fake registry (axum on an ephemeral
//! port) that applies the collector's stale-revision rule.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::*;
use crate::config::HealthCheck;

#[derive(Default)]
struct Fake {
    last_accepted: Mutex<u64>,
    heartbeats: Mutex<Vec<Value>>,
    deletes: Mutex<Vec<(String, String, String)>>,
    healthy: AtomicBool,
}

async fn heartbeat(
    State(f): State<Arc<Fake>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let rev = body["heartbeat_revision"].as_u64().unwrap_or(0);
    f.heartbeats.lock().push(body);
    let mut last = f.last_accepted.lock();
    if rev <= *last {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "stale heartbeat revision", "last_accepted": *last})),
        );
    }
    *last = rev;
    (
        StatusCode::OK,
        Json(
            json!({"lease_id": "l-1", "revision": 7, "heartbeat_revision": rev, "expires_at_unix_ms": 123}),
        ),
    )
}

async fn start(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/api/v1/registry/heartbeat", post(heartbeat))
        .route(
            "/api/v1/registry/instances/{service}/{instance}",
            delete(
                |State(f): State<Arc<Fake>>,
                 UrlPath((s, i)): UrlPath<(String, String)>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    f.deletes
                        .lock()
                        .push((s, i, q.get("reason").cloned().unwrap_or_default()));
                    StatusCode::OK
                },
            ),
        )
        .route(
            "/health",
            get(|State(f): State<Arc<Fake>>| async move {
                if f.healthy.load(Ordering::SeqCst) {
                    StatusCode::OK
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        )
        .with_state(fake);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn heartbeater(
    base: &str,
    dir: &std::path::Path,
    check: HealthCheck,
) -> (Heartbeater, Arc<AgentStatus>) {
    let http = crate::tls::http_client_builder().build().unwrap();
    let cfg = HeartbeatConfig {
        service: "shop".into(),
        instance: None,
        address: "10.0.0.1:80".into(),
        ttl: Duration::from_secs(30),
        interval: Duration::from_secs(10),
        check: check.clone(),
        health_timeout: Duration::from_secs(2),
        healthy_after: 2,
    };
    let status = Arc::new(AgentStatus::default());
    let hb = Heartbeater::new(
        cfg,
        "host-1".into(),
        RegistryClient::new(http.clone(), base, None, Duration::from_secs(5)),
        Prober::new(check, Duration::from_secs(2), http),
        RevisionFile::open(dir).unwrap(),
        HeartbeatMetrics::register(&prometheus::Registry::new()).unwrap(),
        status.clone(),
    );
    (hb, status)
}

#[tokio::test]
async fn revisions_persist_across_restarts_and_shutdown_deregisters() {
    let fake = Arc::new(Fake::default());
    let base = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut hb, status) = heartbeater(&base, dir.path(), HealthCheck::None);
    assert_eq!(hb.tick().await, Tick::Renewed { revision: 1 });
    assert_eq!(hb.tick().await, Tick::Renewed { revision: 2 });
    let r = status.registration();
    assert_eq!(
        (r.state, r.heartbeat_revision, r.lease_id.as_deref()),
        ("registered", 2, Some("l-1"))
    );
    {
        let sent = fake.heartbeats.lock();
        assert_eq!(sent[0]["service"], "shop");
        assert_eq!(sent[0]["instance"], "host-1");
        assert_eq!(sent[0]["ttl"], "30s");
        assert_eq!(sent[0]["health"], "passing");
        assert_eq!(sent[0]["address"], "10.0.0.1:80");
    }
    // A restarted agent continues above the persisted revision.
    let (mut hb, _) = heartbeater(&base, dir.path(), HealthCheck::None);
    assert_eq!(hb.tick().await, Tick::Renewed { revision: 3 });
    hb.deregister("agent shut down (SIGTERM)").await;
    assert_eq!(
        fake.deletes.lock().clone(),
        vec![(
            "shop".into(),
            "host-1".into(),
            "agent shut down (SIGTERM)".into()
        )]
    );
}

#[tokio::test]
async fn stale_revision_409_jumps_forward() {
    let fake = Arc::new(Fake::default());
    *fake.last_accepted.lock() = 50;
    let base = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut hb, _) = heartbeater(&base, dir.path(), HealthCheck::None);
    assert_eq!(hb.tick().await, Tick::Renewed { revision: 51 });
    let revs: Vec<u64> = fake
        .heartbeats
        .lock()
        .iter()
        .map(|h| h["heartbeat_revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revs, vec![1, 51]);
    assert_eq!(
        RevisionFile::open(dir.path()).unwrap().last(),
        51,
        "the jump is persisted"
    );
}

#[tokio::test]
async fn failing_health_reports_critical_once_then_needs_healthy_after_passes() {
    let fake = Arc::new(Fake::default());
    fake.healthy.store(true, Ordering::SeqCst);
    let base = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut hb, status) = heartbeater(
        &base,
        dir.path(),
        HealthCheck::Url(format!("{base}/health")),
    );
    assert_eq!(hb.tick().await, Tick::Renewed { revision: 1 });
    fake.healthy.store(false, Ordering::SeqCst);
    assert_eq!(hb.tick().await, Tick::ReportedCritical { revision: 2 });
    assert_eq!(hb.tick().await, Tick::Skipped);
    assert_eq!(status.registration().state, "unhealthy");
    fake.healthy.store(true, Ordering::SeqCst);
    assert_eq!(
        hb.tick().await,
        Tick::Skipped,
        "--healthy-after 2: one pass is not enough"
    );
    assert_eq!(status.registration().state, "recovering");
    assert_eq!(hb.tick().await, Tick::Renewed { revision: 3 });
    let health: Vec<String> = fake
        .heartbeats
        .lock()
        .iter()
        .map(|h| h["health"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(health, ["passing", "critical", "passing"]);
}

#[tokio::test]
async fn an_unreachable_collector_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let (mut hb, status) = heartbeater(&base, dir.path(), HealthCheck::None);
    assert!(matches!(hb.tick().await, Tick::Failed(_)));
    assert_eq!(status.registration().state, "failing");
}
