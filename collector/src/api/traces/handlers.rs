//! Handlers of the native trace API. Store reads, assembly and JSON encoding
//! all run on the blocking pool (a 100k-span trace is real work); errors
//! answer `{"error":"…"}` with 400 (bad id or parameter), 404 (unknown
//! trace), 500/503.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::model;
use crate::api::error::{ApiError, Problem};
use crate::api::jaeger::params::parse_trace_id;
use crate::api::params::Params;
use crate::api::{blocking, ApiState};
use crate::query::{TraceId, TraceStore};
use crate::traces::{self, AssembledTrace, TraceSettings};

pub const TRACE: &str = "/api/v1/traces/{trace_id}";
pub const COMPARE: &str = "/api/v1/traces/compare";

/// A pre-encoded JSON body.
pub struct JsonBody(Vec<u8>);

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    encode_sized(value, 256)
}

/// Encode into a buffer of `capacity` bytes up front: a 100k-span answer
/// is ~40 MiB, and growing to it by doubling copied it several times.
fn encode_sized<T: serde::Serialize>(value: &T, capacity: usize) -> Result<Vec<u8>, Problem> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)
        .map_err(|e| Problem::internal(format!("encoding the answer: {e}")))?;
    Ok(out)
}

/// A generous guess of a trace answer's size: ~400 B of JSON per span with
/// five attributes; the untouched rest of the buffer costs no memory.
fn trace_answer_capacity(trace: &AssembledTrace, with_spans: bool) -> usize {
    if with_spans {
        4096 + trace.tree.nodes.len().saturating_mul(512)
    } else {
        4096
    }
}

fn trace_id_param(name: &str, raw: &str) -> Result<TraceId, ApiError> {
    parse_trace_id(raw).map_err(|e| ApiError::Native(Problem::invalid_param(name, e)))
}

/// Read and assemble one trace; `None` when the store has no span of it.
fn load(
    store: &dyn TraceStore,
    id: &TraceId,
    settings: &TraceSettings,
) -> Result<Option<AssembledTrace>, Problem> {
    Ok(traces::assemble(store.trace(id)?, settings))
}

fn not_found(id: &TraceId) -> Problem {
    Problem::not_found(format!("trace {} not found", hex::encode(id)))
}

/// `GET /api/v1/traces/{trace_id}[?fields=summary|all]`.
pub async fn trace(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    state
        .metrics
        .clone()
        .timed(TRACE, trace_inner(state, id, query))
        .await
}

async fn trace_inner(
    state: ApiState,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let params = Params::from_extractor(query).map_err(ApiError::Native)?;
    let with_spans = match params.get("fields") {
        None | Some("" | "all") => true,
        Some("summary") => false,
        Some(other) => {
            return Err(ApiError::Native(Problem::invalid_param(
                "fields",
                format!("\"{other}\" is not one of summary, all"),
            )))
        }
    };
    let Path(raw) =
        id.map_err(|e| ApiError::Native(Problem::invalid_param("trace_id", e.body_text())))?;
    let trace_id = trace_id_param("trace_id", &raw)?;
    let store = state.traces.clone();
    let settings = state.extra.traces;
    blocking(move || {
        let trace =
            load(store.as_ref(), &trace_id, &settings)?.ok_or_else(|| not_found(&trace_id))?;
        encode_sized(
            &model::trace_json(&trace, with_spans),
            trace_answer_capacity(&trace, with_spans),
        )
    })
    .await
    .map(JsonBody)
    .map_err(ApiError::Native)
}

/// `GET /api/v1/traces/compare?a=<trace id>&b=<trace id>`.
pub async fn compare(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    state
        .metrics
        .clone()
        .timed(COMPARE, compare_inner(state, query))
        .await
}

async fn compare_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<JsonBody, ApiError> {
    let params = Params::from_extractor(query).map_err(ApiError::Native)?;
    let id = |name: &str| -> Result<TraceId, ApiError> {
        let raw = params
            .get(name)
            .ok_or_else(|| ApiError::Native(Problem::missing_param(name)))?;
        trace_id_param(name, raw)
    };
    let (a, b) = (id("a")?, id("b")?);
    let store = state.traces.clone();
    let settings = state.extra.traces;
    blocking(move || {
        let ta = load(store.as_ref(), &a, &settings)?.ok_or_else(|| not_found(&a))?;
        let tb = load(store.as_ref(), &b, &settings)?.ok_or_else(|| not_found(&b))?;
        let comparison = traces::compare(&ta.tree, &tb.tree);
        encode(&model::compare_json(
            &hex::encode(a),
            &hex::encode(b),
            comparison,
        ))
    })
    .await
    .map(JsonBody)
    .map_err(ApiError::Native)
}
