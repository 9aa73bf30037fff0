//! Router-level tests: ops endpoints, unknown paths, query metrics, and that
//! the router can be extended and layered the way the pipeline will.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;

use super::testing::*;
use super::{ops_routes, read_routes, ApiExtra, Readiness};

#[tokio::test]
async fn healthz_and_readyz() {
    let app = app(FakeTraces::default(), FakeLogs::default());
    let a = app.get("/healthz").await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "ok"));
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);

    let readiness = Readiness::new(false);
    let state = app.state.clone().with_extra(ApiExtra {
        readiness: readiness.clone(),
        ..Default::default()
    });
    let router = super::router(state);
    let call = |router: Router| async move {
        let req = Request::builder()
            .uri("/readyz")
            .body(Body::empty())
            .expect("request");
        router.oneshot(req).await.expect("infallible").status()
    };
    assert_eq!(call(router.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
    readiness.set_ready(true);
    assert_eq!(call(router).await, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_query_metrics() {
    let app = app(FakeTraces::default(), FakeLogs::default());
    app.get("/api/services").await;
    app.get("/api/traces/ffff").await; // 404
    app.get("/api/traces?limit=x").await; // 400
    let a = app.get("/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = a.text();
    assert!(
        text.contains("# TYPE skein_query_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_query_duration_seconds_count{endpoint="/api/services"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_query_duration_seconds_count{endpoint="/api/traces/{id}"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_query_errors_total{endpoint="/api/traces/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_query_errors_total{endpoint="/api/traces",status="400"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"endpoint="/api/services",status"#),
        "success is not an error: {text}"
    );
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let app = app(FakeTraces::default(), FakeLogs::default());
    let a = app.get("/api/nothing/here").await;
    assert_jaeger_error(&a, 404, "/api/nothing/here");
    let a = app.get("/api/v1/nothing").await;
    assert_native_error(&a, 404, "/api/v1/nothing");
    // Outside /api, axum's plain 404.
    assert_eq!(app.get("/elsewhere").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn router_merges_and_read_routes_take_a_layer() {
    let app = app(FakeTraces::default(), FakeLogs::default());
    // Extra routes merge into the plain router, including under /api.
    let merged = super::router(app.state.clone())
        .merge(Router::new().route("/api/extension", get(|| async { "ext" })));
    let req = Request::builder()
        .uri("/api/extension")
        .body(Body::empty())
        .expect("request");
    let resp = merged.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let req = Request::builder()
        .uri("/api/services")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        merged.oneshot(req).await.expect("infallible").status(),
        StatusCode::OK
    );

    // A layer on the read routes only (as auth does) leaves ops routes open.
    let deny = axum::middleware::from_fn(
        |_req: axum::extract::Request, _next: axum::middleware::Next| async {
            StatusCode::UNAUTHORIZED
        },
    );
    let layered = read_routes()
        .layer(deny)
        .merge(ops_routes())
        .with_state(app.state.clone());
    for (uri, want) in [
        ("/api/services", StatusCode::UNAUTHORIZED),
        ("/api/v1/logs", StatusCode::UNAUTHORIZED),
        ("/metrics", StatusCode::OK),
        ("/healthz", StatusCode::OK),
    ] {
        let req = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            layered
                .clone()
                .oneshot(req)
                .await
                .expect("infallible")
                .status(),
            want,
            "{uri}"
        );
    }
}
