//! Jaeger query API handlers: services, operations, trace search, trace by id.
//!
//! Each handler parses its parameters ([`super::params`]), runs the blocking
//! store calls on the blocking pool, converts with [`super::convert`] and
//! answers in Jaeger's envelope; failures answer Jaeger's error body. Each is
//! timed under its route template.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;

use super::convert;
use super::model::{Envelope, OperationItem, Trace};
use super::params::{parse_search, parse_span_kind, parse_trace_id, Search};
use crate::api::error::{ApiError, Problem};
use crate::api::params::Params;
use crate::api::{blocking, ApiState};
use crate::query::{TraceId, TraceStore};
use crate::traces::TraceSettings;

pub const SERVICES: &str = "/api/services";
pub const SERVICE_OPERATIONS: &str = "/api/services/{service}/operations";
pub const OPERATIONS: &str = "/api/operations";
pub const TRACES: &str = "/api/traces";
pub const TRACE: &str = "/api/traces/{id}";

type JaegerResult<T> = Result<Json<Envelope<T>>, ApiError>;

/// `GET /api/services` → `{"data":["svc",…],"total":N,…}`.
pub async fn services(State(state): State<ApiState>) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(SERVICES, services_inner(state))
        .await
}

async fn services_inner(state: ApiState) -> JaegerResult<Vec<String>> {
    let store = state.traces.clone();
    let services = blocking(move || Ok(store.services()?))
        .await
        .map_err(ApiError::Jaeger)?;
    let total = services.len();
    Ok(Json(Envelope::new(services, total)))
}

/// `GET /api/services/{service}/operations` → `{"data":["op",…]}` (names, sorted, unique).
pub async fn service_operations(
    State(state): State<ApiState>,
    service: Result<Path<String>, PathRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(SERVICE_OPERATIONS, service_operations_inner(state, service))
        .await
}

async fn service_operations_inner(
    state: ApiState,
    service: Result<Path<String>, PathRejection>,
) -> JaegerResult<Vec<String>> {
    let Path(service) =
        service.map_err(|e| ApiError::Jaeger(Problem::invalid_param("service", e.body_text())))?;
    let store = state.traces.clone();
    let ops = blocking(move || Ok(store.operations(&service, None)?))
        .await
        .map_err(ApiError::Jaeger)?;
    let mut names: Vec<String> = ops.into_iter().map(|op| op.name).collect();
    names.sort();
    names.dedup();
    let total = names.len();
    Ok(Json(Envelope::new(names, total)))
}

/// `GET /api/operations?service=&spanKind=` → `{"data":[{"name","spanKind"}]}`.
pub async fn operations(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(OPERATIONS, operations_inner(state, query))
        .await
}

async fn operations_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> JaegerResult<Vec<OperationItem>> {
    let params = Params::from_extractor(query).map_err(ApiError::Jaeger)?;
    let service = params
        .get("service")
        .ok_or_else(|| ApiError::Jaeger(Problem::missing_param("service")))?
        .to_owned();
    let kind = parse_span_kind(params.get("spanKind").unwrap_or("")).map_err(ApiError::Jaeger)?;
    let store = state.traces.clone();
    let ops = blocking(move || Ok(store.operations(&service, kind)?))
        .await
        .map_err(ApiError::Jaeger)?;
    let items: Vec<OperationItem> = ops
        .into_iter()
        .map(|op| OperationItem {
            name: op.name,
            span_kind: op.kind.as_str().to_owned(),
        })
        .collect();
    let total = items.len();
    Ok(Json(Envelope::new(items, total)))
}

/// `GET /api/traces?…` → `{"data":[trace,…]}`, newest first, never an empty trace.
pub async fn search(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(TRACES, search_inner(state, query))
        .await
}

async fn search_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> JaegerResult<Vec<Trace>> {
    let params = Params::from_extractor(query).map_err(ApiError::Jaeger)?;
    let search = parse_search(&params).map_err(ApiError::Jaeger)?;
    let store = state.traces.clone();
    let settings = state.extra.traces;
    let traces = blocking(move || {
        let ids = match search {
            Search::Ids(ids) => ids,
            Search::Query(q) => store.find_trace_ids(&q)?,
        };
        fetch_traces(store.as_ref(), &ids, &settings)
    })
    .await
    .map_err(ApiError::Jaeger)?;
    let total = traces.len();
    Ok(Json(Envelope::new(traces, total)))
}

/// Fetch, assemble and convert each trace; drop the ones without spans
/// (expired between the search and the fetch); newest (latest first span) first.
pub fn fetch_traces(
    store: &dyn TraceStore,
    ids: &[TraceId],
    settings: &TraceSettings,
) -> Result<Vec<Trace>, Problem> {
    let mut traces = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(trace) = convert::trace_with(store.trace(id)?, settings) {
            traces.push(trace);
        }
    }
    traces.sort_by_key(|t| std::cmp::Reverse(convert::trace_start_us(t)));
    Ok(traces)
}

/// `GET /api/traces/{id}[?start=&end=]` → `{"data":[trace]}`; the window is
/// ignored (every partition is searched), 400 for a malformed id, 404 when unknown.
pub async fn trace(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(TRACE, trace_inner(state, id))
        .await
}

async fn trace_inner(
    state: ApiState,
    id: Result<Path<String>, PathRejection>,
) -> JaegerResult<[Trace; 1]> {
    let Path(raw) =
        id.map_err(|e| ApiError::Jaeger(Problem::invalid_param("traceID", e.body_text())))?;
    let trace_id =
        parse_trace_id(&raw).map_err(|e| ApiError::Jaeger(Problem::invalid_param("traceID", e)))?;
    let store = state.traces.clone();
    let settings = state.extra.traces;
    let trace = blocking(move || Ok(convert::trace_with(store.trace(&trace_id)?, &settings)))
        .await
        .map_err(ApiError::Jaeger)?;
    match trace {
        Some(t) => Ok(Json(Envelope::new([t], 1))),
        None => Err(ApiError::Jaeger(Problem::not_found(format!(
            "trace {} not found",
            hex::encode(trace_id)
        )))),
    }
}
