//! The registry HTTP API under `/api/v1/registry` (see docs/api.md):
//!
//! ```text
//! POST   /api/v1/registry/heartbeat                       register / renew / update
//! DELETE /api/v1/registry/instances/{service}/{instance}  graceful deregistration (?reason=)
//! GET    /api/v1/registry/instances/{service}/{instance}  one instance
//! GET    /api/v1/registry/services[?revision=N&service=S] everything, grouped by service
//! GET    /api/v1/registry/watch?from_revision=N&timeout=30s  long-poll, or SSE with
//!                                                          Accept: text/event-stream
//! ```
//!
//! Only HTTP shapes live here: parsing, status codes, JSON. The registry's
//! rules are in `crate::registry`.

mod parse;
mod watch;

#[cfg(test)]
mod tests;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, Problem};
use super::params::Params;
use crate::registry::{InstanceState, InstanceView, Registry, RegistryError};

pub const HEARTBEAT: &str = "/api/v1/registry/heartbeat";
pub const INSTANCE: &str = "/api/v1/registry/instances/{service}/{*instance}";
pub const SERVICES: &str = "/api/v1/registry/services";
pub const WATCH: &str = "/api/v1/registry/watch";

/// Largest heartbeat body.
const MAX_BODY: usize = 256 << 10;

/// What the handlers share.
#[derive(Clone)]
pub struct RegistryApi {
    pub registry: Registry,
    /// Cancelled at shutdown: long-polls answer and streams end.
    pub shutdown: CancellationToken,
}

/// Routes that change the registry (put behind write auth).
pub fn write_routes(state: RegistryApi) -> Router {
    Router::new()
        .route(HEARTBEAT, post(heartbeat))
        .route(INSTANCE, delete(deregister))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Routes that read the registry (put behind read auth).
pub fn read_routes(state: RegistryApi) -> Router {
    Router::new()
        .route(SERVICES, get(services))
        .route(INSTANCE, get(instance))
        .route(WATCH, get(watch::watch))
        .with_state(state)
}

/// A registry answer that is not a success.
pub(crate) enum Failure {
    Problem(Problem),
    Stale(u64),
    Compacted(u64),
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Self {
        Failure::Problem(p)
    }
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        use super::error::ErrorKind;
        match e {
            RegistryError::Stale { last_accepted } => Failure::Stale(last_accepted),
            RegistryError::Compacted { oldest } => Failure::Compacted(oldest),
            RegistryError::NotFound { .. } => Failure::Problem(Problem::not_found(e.to_string())),
            RegistryError::Full { .. } | RegistryError::Unavailable(_) => {
                Failure::Problem(Problem::new(ErrorKind::Unavailable, e.to_string()))
            }
            RegistryError::Persist(_) | RegistryError::Open(_) => {
                Failure::Problem(Problem::internal(e.to_string()))
            }
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Stale(last_accepted) => (
                StatusCode::CONFLICT,
                Json(json!({"error": "stale heartbeat revision", "last_accepted": last_accepted})),
            )
                .into_response(),
            Failure::Compacted(oldest) => (
                StatusCode::GONE,
                Json(json!({
                    "error": "required revision has been compacted",
                    "oldest_revision": oldest,
                    "compact_revision": oldest.saturating_sub(1),
                })),
            )
                .into_response(),
            Failure::Problem(p) => {
                let unavailable = p.status() == StatusCode::SERVICE_UNAVAILABLE;
                let mut resp = ApiError::Native(p).into_response();
                if unavailable {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                resp
            }
        }
    }
}

async fn heartbeat(State(api): State<RegistryApi>, body: Bytes) -> Result<Response, Failure> {
    let hb = parse::heartbeat(&body).map_err(|msg| {
        api.registry
            .metrics()
            .heartbeats
            .with_label_values(&["invalid"])
            .inc();
        Problem::new(super::error::ErrorKind::BadRequest, msg)
    })?;
    let reply = api.registry.heartbeat(hb).await?;
    Ok(Json(reply).into_response())
}

async fn deregister(
    State(api): State<RegistryApi>,
    Path((service, instance)): Path<(String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Failure> {
    let params = Params::from_extractor(query)?;
    let reason = params.get("reason");
    let revision = api.registry.deregister(&service, &instance, reason).await?;
    Ok(Json(json!({
        "revision": revision,
        "service": service,
        "instance": instance,
        "state": InstanceState::Deregistered,
    }))
    .into_response())
}

async fn instance(
    State(api): State<RegistryApi>,
    Path((service, instance)): Path<(String, String)>,
) -> Result<Response, Failure> {
    match api.registry.get(&service, &instance) {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(RegistryError::NotFound { service, instance }.into()),
    }
}

#[derive(Serialize)]
struct ServiceGroup {
    service: String,
    alive: usize,
    expired: usize,
    deregistered: usize,
    instances: Vec<InstanceView>,
}

async fn services(
    State(api): State<RegistryApi>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Failure> {
    let params = Params::from_extractor(query)?;
    let revision = params.u64("revision")?;
    let only = params.get("service");
    let (revision, views) = api.registry.list_at(revision)?;
    let mut groups: Vec<ServiceGroup> = Vec::new();
    for v in views {
        if only.is_some_and(|s| s != v.service) {
            continue;
        }
        if groups.last().is_none_or(|g| g.service != v.service) {
            groups.push(ServiceGroup {
                service: v.service.clone(),
                alive: 0,
                expired: 0,
                deregistered: 0,
                instances: Vec::new(),
            });
        }
        if let Some(g) = groups.last_mut() {
            match v.state {
                InstanceState::Alive => g.alive += 1,
                InstanceState::Expired => g.expired += 1,
                InstanceState::Deregistered => g.deregistered += 1,
            }
            g.instances.push(v);
        }
    }
    Ok(Json(json!({"revision": revision, "services": groups})).into_response())
}
