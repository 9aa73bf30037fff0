//! The admin endpoint on `--admin-addr`: `/healthz` (the process is up),
//! `/readyz` (listeners bound and the disk buffer accepting data),
//! `/metrics` (Prometheus text) and `GET /status` (JSON: collector
//! reachability, buffer usage, registration state and revision, tailed
//! files). Read-only: it must not change the pipeline.

pub mod status;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::Registry;

use crate::buffer::Buffer;
use status::AgentStatus;

#[derive(Clone)]
struct AdminState {
    status: Arc<AgentStatus>,
    buffer: Buffer,
    registry: Registry,
}

/// The admin router.
pub fn router(status: Arc<AgentStatus>, buffer: Buffer, registry: Registry) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status_json))
        .with_state(AdminState {
            status,
            buffer,
            registry,
        })
}

async fn readyz(State(st): State<AdminState>) -> Response {
    if !st.status.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    if st.buffer.is_full() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "disk buffer full: the collector is not taking data\n",
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn metrics(State(st): State<AdminState>) -> Response {
    match crate::telemetry::encode_text(&st.registry) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}\n"),
        )
            .into_response(),
    }
}

async fn status_json(State(st): State<AdminState>) -> Json<serde_json::Value> {
    let (used, max) = st.buffer.usage();
    Json(serde_json::json!({
        "ready": st.status.is_ready(),
        "collector": st.status.collector(),
        "buffer": {
            "used_bytes": used,
            "max_bytes": max,
            "usage": if max == 0 { 0.0 } else { used as f64 / max as f64 },
        },
        "registration": st.status.registration(),
        "tail": st.status.tail(),
    }))
}
