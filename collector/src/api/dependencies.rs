//! The dependency-graph endpoints, over [`crate::derive::Derived`]:
//!
//! - `GET /api/dependencies?endTs=<ms>&lookback=<ms>` (Jaeger, what Grafana's
//!   Jaeger data source and Jaeger's UI call): `{"data":[{"parent","child","callCount"}]}`;
//!   defaults `endTs` = now, `lookback` = 24 h, like Jaeger.
//! - `GET /api/v1/dependencies?start=&end=` (native; RFC 3339 or Unix ns;
//!   defaults: the last hour): every edge with call and error counts,
//!   p50/p99 latency in ms and Tempo's connection type.
//!
//! Buckets are per minute, so windows are widened to whole minutes. With
//! `--derive=false` both answer 404 saying so.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::{ApiError, Problem};
use super::jaeger::model::Envelope;
use super::params::Params;
use super::timestamp::parse_time_ns;
use super::{blocking, ApiState};
use crate::derive::{Derived, EdgeSummary};

pub const JAEGER: &str = "/api/dependencies";
pub const NATIVE: &str = "/api/v1/dependencies";

const DAY_MS: u64 = 86_400_000;
const HOUR_NS: u64 = 3_600_000_000_000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(JAEGER, get(jaeger))
        .route(NATIVE, get(native))
}

/// One Jaeger `DependencyLink`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub parent: String,
    pub child: String,
    #[serde(rename = "callCount")]
    pub call_count: u64,
}

/// One edge of the native answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NativeEdge {
    pub parent: String,
    pub child: String,
    /// Tempo's `connection_type`: `""`, `messaging_system`, `database`, `virtual_node`.
    pub connection_type: &'static str,
    pub call_count: u64,
    pub error_count: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NativeResponse {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub edges: Vec<NativeEdge>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn derived(state: &ApiState) -> Result<Derived, Problem> {
    state
        .extra
        .derived
        .clone()
        .ok_or_else(|| Problem::not_found("the dependency graph is turned off (--derive=false)"))
}

pub async fn jaeger(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(JAEGER, jaeger_inner(state, query))
        .await
}

async fn jaeger_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Envelope<Vec<Link>>>, ApiError> {
    let params = Params::from_extractor(query).map_err(ApiError::Jaeger)?;
    let (start, end) = jaeger_window(&params, now_ns()).map_err(ApiError::Jaeger)?;
    let derived = derived(&state).map_err(ApiError::Jaeger)?;
    let edges = blocking(move || Ok(derived.graph.window(start, end)))
        .await
        .map_err(ApiError::Jaeger)?;
    let links = jaeger_links(&edges);
    let total = links.len();
    Ok(Json(Envelope::new(links, total)))
}

/// `endTs`/`lookback` (ms) → `[start, end]` in ns.
pub fn jaeger_window(params: &Params, now_ns: u64) -> Result<(u64, u64), Problem> {
    let end_ms = params.u64("endTs")?.unwrap_or(now_ns / 1_000_000);
    let lookback_ms = params.u64("lookback")?.unwrap_or(DAY_MS);
    let end = end_ms
        .checked_mul(1_000_000)
        .ok_or_else(|| Problem::invalid_param("endTs", "out of range (milliseconds expected)"))?;
    let lookback = lookback_ms.checked_mul(1_000_000).ok_or_else(|| {
        Problem::invalid_param("lookback", "out of range (milliseconds expected)")
    })?;
    Ok((end.saturating_sub(lookback), end))
}

/// Sum over connection types: Jaeger knows only parent → child.
pub fn jaeger_links(edges: &[EdgeSummary]) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    for e in edges {
        match links
            .iter_mut()
            .find(|l| l.parent == *e.parent && l.child == *e.child)
        {
            Some(l) => l.call_count += e.calls,
            None => links.push(Link {
                parent: e.parent.to_string(),
                child: e.child.to_string(),
                call_count: e.calls,
            }),
        }
    }
    links
}

pub async fn native(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(NATIVE, native_inner(state, query))
        .await
}

async fn native_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<NativeResponse>, ApiError> {
    let params = Params::from_extractor(query).map_err(ApiError::Native)?;
    let (start, end) = native_window(&params, now_ns()).map_err(ApiError::Native)?;
    let derived = derived(&state).map_err(ApiError::Native)?;
    let edges = blocking(move || Ok(derived.graph.window(start, end)))
        .await
        .map_err(ApiError::Native)?;
    Ok(Json(NativeResponse {
        start_unix_nano: start,
        end_unix_nano: end,
        edges: edges
            .into_iter()
            .map(|e| NativeEdge {
                parent: e.parent.to_string(),
                child: e.child.to_string(),
                connection_type: e.conn.label(),
                call_count: e.calls,
                error_count: e.errors,
                latency_p50_ms: e.p50_ms.map(round3),
                latency_p99_ms: e.p99_ms.map(round3),
            })
            .collect(),
    }))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `start`/`end` (RFC 3339 or Unix ns) → `[start, end]`; the last hour by default.
pub fn native_window(params: &Params, now_ns: u64) -> Result<(u64, u64), Problem> {
    let time = |name: &str| {
        params
            .get(name)
            .map(|v| parse_time_ns(v).map_err(|why| Problem::invalid_param(name, why)))
            .transpose()
    };
    let end = time("end")?.unwrap_or(now_ns);
    let start = time("start")?.unwrap_or(end.saturating_sub(HOUR_NS));
    if start > end {
        return Err(Problem::invalid_param("start", "must not be after 'end'"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests;
