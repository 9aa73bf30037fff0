//! Handler tests against a real registry in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::registry::{ManualClock, RegistryConfig, RegistryMetrics};

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    clock: ManualClock,
    registry: Registry,
}

fn fixture(history: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let registry = Registry::open(
        RegistryConfig {
            dir: dir.path().join("registry"),
            expired_retention: Duration::from_secs(3600),
            history,
            max_instances: 100,
        },
        Arc::new(clock.clone()),
        RegistryMetrics::register(&prometheus::Registry::new()).unwrap(),
    )
    .unwrap();
    let api = RegistryApi {
        registry: registry.clone(),
        shutdown: CancellationToken::new(),
    };
    let app = read_routes(api.clone()).merge(write_routes(api));
    Fixture {
        _dir: dir,
        app,
        clock,
        registry,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn beat(body: Value) -> Request<Body> {
    Request::post(HEARTBEAT)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn heartbeat_register_renew_stale_and_list() {
    let f = fixture(100);
    let hb = |rev: u64| json!({"service":"cart","instance":"c1","ttl":"2s","heartbeat_revision":rev,"address":"h:1"});
    let (s, v) = call(&f.app, beat(hb(1))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["revision"], 1);
    assert_eq!(v["lease_id"], 1);
    assert_eq!(v["heartbeat_revision"], 1);
    assert!(v["expires_at_unix_ms"].as_u64().unwrap() > 0);
    let (s, v) = call(&f.app, beat(hb(1))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        v,
        json!({"error":"stale heartbeat revision","last_accepted":1})
    );
    let (s, v) = call(&f.app, beat(hb(2))).await;
    assert_eq!((s, v["revision"].as_u64()), (StatusCode::OK, Some(1)));

    let (s, v) = call(&f.app, get(SERVICES)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["revision"], 1);
    let svc = &v["services"][0];
    assert_eq!(
        (svc["service"].as_str(), svc["alive"].as_u64()),
        (Some("cart"), Some(1))
    );
    let inst = &svc["instances"][0];
    for field in [
        "instance",
        "state",
        "address",
        "metadata",
        "health",
        "heartbeat_revision",
        "create_revision",
        "mod_revision",
        "version",
        "registered_at_unix_ms",
        "last_heartbeat_unix_ms",
        "expires_at_unix_ms",
    ] {
        assert!(inst.get(field).is_some(), "missing {field} in {inst}");
    }
    assert_eq!(inst["state"], "alive");

    f.clock.advance_ms(2000);
    f.registry.tick();
    let (_, v) = call(&f.app, get("/api/v1/registry/instances/cart/c1")).await;
    assert_eq!(v["state"], "expired");
    let (s, _) = call(&f.app, beat(hb(2))).await;
    assert_eq!(s, StatusCode::CONFLICT, "a replay does not revive");
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field() {
    let f = fixture(100);
    for (body, needle) in [
        ("{".to_string(), "invalid JSON"),
        (
            json!({"instance":"a","ttl":"5s","heartbeat_revision":1}).to_string(),
            "'service'",
        ),
        (
            json!({"service":"a","instance":"b","ttl":"100ms","heartbeat_revision":1}).to_string(),
            "'ttl'",
        ),
        (
            json!({"service":"a","instance":"b","ttl":"2h","heartbeat_revision":1}).to_string(),
            "'ttl'",
        ),
        (
            json!({"service":"a","instance":"b","ttl":"5s"}).to_string(),
            "'heartbeat_revision'",
        ),
    ] {
        let req = Request::post(HEARTBEAT)
            .body(Body::from(body.clone()))
            .unwrap();
        let (s, v) = call(&f.app, req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
}

#[tokio::test]
async fn deregister_and_unknown_instances() {
    let f = fixture(100);
    call(
        &f.app,
        beat(json!({"service":"cart","instance":"pod/1","ttl":"5s","heartbeat_revision":1})),
    )
    .await;
    let req = Request::delete("/api/v1/registry/instances/cart/pod/1?reason=rollout")
        .body(Body::empty())
        .unwrap();
    let (s, v) = call(&f.app, req).await;
    assert_eq!(
        (s, v["revision"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let (_, v) = call(&f.app, get("/api/v1/registry/instances/cart/pod/1")).await;
    assert_eq!(
        (v["state"].as_str(), v["deregister_reason"].as_str()),
        (Some("deregistered"), Some("rollout"))
    );
    let req = Request::delete("/api/v1/registry/instances/cart/nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&f.app, req).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn watch_long_poll_ranges_and_410() {
    let f = fixture(3);
    for i in 0..5 {
        call(
            &f.app,
            beat(
                json!({"service":"s","instance":format!("i{i}"),"ttl":"5s","heartbeat_revision":1}),
            ),
        )
        .await;
    }
    let (s, v) = call(
        &f.app,
        get("/api/v1/registry/watch?from_revision=3&timeout=1s"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let revs: Vec<u64> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revs, vec![3, 4, 5]);
    assert_eq!(v["events"][0]["type"], "registered");
    assert_eq!(v["events"][0]["instance"], "i2");
    let (s, v) = call(&f.app, get("/api/v1/registry/watch?from_revision=2")).await;
    assert_eq!(s, StatusCode::GONE);
    assert_eq!(v["oldest_revision"], 3);
    let (s, v) = call(&f.app, get("/api/v1/registry/services?revision=1")).await;
    assert_eq!(s, StatusCode::GONE, "{v}");
    // Nothing new: the long-poll waits, then a heartbeat wakes it.
    let app = f.app.clone();
    let waiter = tokio::spawn(async move {
        call(
            &app,
            get("/api/v1/registry/watch?from_revision=6&timeout=10s"),
        )
        .await
    });
    tokio::task::yield_now().await;
    call(
        &f.app,
        beat(json!({"service":"s","instance":"late","ttl":"5s","heartbeat_revision":1})),
    )
    .await;
    let (s, v) = waiter.await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["events"][0]["revision"], 6);
    let (s, v) = call(
        &f.app,
        get("/api/v1/registry/watch?from_revision=7&timeout=10ms"),
    )
    .await;
    assert_eq!(
        (s, v["events"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    assert_eq!(
        call(&f.app, get("/api/v1/registry/watch?from_revision=0"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&f.app, get("/api/v1/registry/watch?timeout=never"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}
