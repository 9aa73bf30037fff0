//! The HTTP query side on `--http-addr`: the Jaeger query API at the root,
//! the native `/api/v1` API, the Loki API under `/loki/api/v1/`, `/metrics`, `/healthz` and `/readyz`.
//!
//! Written against the storage seam only ([`crate::query::TraceStore`],
//! [`crate::query::LogStore`]); store calls block (tantivy), so they run on
//! the blocking pool. Layout:
//!
//! ```text
//! mod.rs        ApiState, router(), read_routes(), ops_routes(), 404 for unknown /api paths
//! error.rs      ApiError (Jaeger- and native-shaped) and the one kind → status mapping
//! metrics.rs    skein_query_duration_seconds{endpoint}, skein_query_errors_total{endpoint,status}
//! params.rs     query-string access shared by the handlers
//! duration.rs   Go duration strings (minDuration/maxDuration)
//! timestamp.rs  RFC 3339 / Unix ns time parameters
//! anyvalue.rs   OTLP AnyValue → JSON
//! jaeger/       Jaeger API: model, convert, params, handlers
//! logs.rs       GET /api/v1/logs
//! search/       GET /api/v1/traces?q= (the trace search language)
//! traces/       GET /api/v1/traces/{trace_id}, /api/v1/traces/compare
//! dependencies.rs  GET /api/dependencies (Jaeger), GET /api/v1/dependencies
//! alerts/       alerts, history, rules and silences (own state: crate::alerts::Alerts)
//! loki/         Loki API subset under /loki/api/v1/ (LogQL in query::logql)
//! ops.rs        /metrics, /healthz, /readyz
//! registry/     /api/v1/registry: heartbeat, instances, services, watch (own state)
//! (the web UI's pages and assets come from `crate::ui::routes`, merged into ops_routes)
//! ```
//!
//! Wiring: `router(state)` is a plain `Router` (no fallback), so the pipeline
//! can `merge` more routes into it. To put auth on the read routes only, build
//! it from the parts instead:
//! `read_routes().layer(auth).merge(ops_routes()).with_state(state)`.

pub mod alerts;
pub mod anyvalue;
pub mod dependencies;
pub mod duration;
pub mod error;
pub mod jaeger;
pub mod logs;
pub mod loki;
pub mod metrics;
pub mod ops;
pub mod params;
pub mod registry;
pub mod search;
pub mod timestamp;
pub mod traces;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::OriginalUri;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

pub use error::{ApiError, ErrorKind, Problem};
pub use metrics::ApiMetrics;

use crate::query::{LogStore, TraceStore};
use crate::telemetry::Registry;

/// Everything the handlers need. Cheap to clone (all shared).
#[derive(Clone)]
pub struct ApiState {
    pub traces: Arc<dyn TraceStore>,
    pub logs: Arc<dyn LogStore>,
    /// The process-wide registry `/metrics` exposes.
    pub registry: Registry,
    /// Query metrics, registered on `registry`.
    pub metrics: ApiMetrics,
    pub extra: ApiExtra,
}

impl ApiState {
    /// Build the state and register the query metrics on `registry`.
    pub fn new(
        traces: Arc<dyn TraceStore>,
        logs: Arc<dyn LogStore>,
        registry: Registry,
    ) -> Result<Self, prometheus::Error> {
        let metrics = ApiMetrics::register(&registry)?;
        Ok(ApiState {
            traces,
            logs,
            registry,
            metrics,
            extra: ApiExtra::default(),
        })
    }

    pub fn with_extra(mut self, extra: ApiExtra) -> Self {
        self.extra = extra;
        self
    }

    /// How traces are assembled (clock-skew correction on or off).
    pub fn with_trace_settings(mut self, settings: crate::traces::TraceSettings) -> Self {
        self.extra.traces = settings;
        self
    }
}

/// Optional pieces the pipeline may set; the defaults suit tests.
#[derive(Clone, Default)]
pub struct ApiExtra {
    /// Drives `/readyz` (ready by default).
    pub readiness: Readiness,
    /// Trace assembly settings (clock-skew correction on by default).
    pub traces: crate::traces::TraceSettings,
    /// The dependency graph (`None` with `--derive=false`: the dependency
    /// endpoints then answer 404).
    pub derived: Option<crate::derive::Derived>,
}

/// A shared ready flag: `/readyz` answers 503 while it is false (e.g. during
/// WAL replay or shutdown). Clones share the flag.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn new(ready: bool) -> Self {
        Readiness(Arc::new(AtomicBool::new(ready)))
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(true)
    }
}

/// The whole query side: [`read_routes`] + [`ops_routes`], with state.
pub fn router(state: ApiState) -> Router {
    read_routes().merge(ops_routes()).with_state(state)
}

/// Routes that read stored data (Jaeger API, `/api/v1/logs`) and the JSON
/// 404 for unknown `/api/…` paths: the ones `--auth-read` protects.
pub fn read_routes() -> Router<ApiState> {
    jaeger::routes()
        .merge(dependencies::routes())
        .route(logs::LOGS, get(logs::search))
        .route(search::TRACES, get(search::search))
        .merge(traces::routes())
        .route("/api/{*rest}", any(unknown_api_path))
        .merge(loki::routes())
}

/// `/metrics`, `/healthz`, `/readyz`, and the web UI's static pages and
/// assets (no data in them: the UI reads through the read routes, so it
/// stays open like the probes).
pub fn ops_routes() -> Router<ApiState> {
    Router::new()
        .route(ops::METRICS, get(ops::metrics))
        .route(ops::HEALTHZ, get(ops::healthz))
        .route(ops::READYZ, get(ops::readyz))
        .merge(crate::ui::routes())
}

/// 404 in the shape of the API the path belongs to (`/api/v1/…` native,
/// other `/api/…` Jaeger).
async fn unknown_api_path(OriginalUri(uri): OriginalUri) -> Response {
    not_found_for(&uri).into_response()
}

fn not_found_for(uri: &Uri) -> ApiError {
    let problem = Problem::not_found(format!("no such endpoint: {}", uri.path()));
    if uri.path().starts_with("/api/v1/") {
        ApiError::Native(problem)
    } else {
        ApiError::Jaeger(problem)
    }
}

/// Run a blocking store call on the blocking pool. A panic in it is a 500;
/// a task cancelled by runtime shutdown is a 503.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, Problem>
where
    F: FnOnce() -> Result<T, Problem> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(Problem::unavailable("shutting down")),
        Err(e) => Err(Problem::internal(format!("query task failed: {e}"))),
    }
}
