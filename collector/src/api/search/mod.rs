//! Native trace search: `GET /api/v1/traces?q=&start=&end=&limit=&cursor=`
//! → `{"traces":[summary…],"next_cursor":"…"|null}`, newest first.
//!
//! Owns the parameter rules (the query language via [`crate::query::lang`],
//! RFC 3339 or Unix ns times, limit bounds, the opaque cursor), the summary
//! → JSON mapping and the handler. A query that does not parse answers 400
//! `{"error":"invalid parameter 'q': at position N: …","position":N}` (N is
//! a 0-based character offset); other bad parameters answer the usual
//! `{"error":"invalid parameter '<name>': …"}`. It must not touch storage
//! internals (only [`crate::query::TraceStore::search_traces`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::error::{ApiError, Problem};
use super::params::Params;
use super::timestamp::parse_time_ns;
use super::{blocking, ApiState};
use crate::query::lang::{self, ParseError};
use crate::query::{SearchCursor, TracePage, TraceSearch, TraceSummary};

pub const TRACES: &str = "/api/v1/traces";
/// Traces per page without `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `limit` honoured; larger values are capped.
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Serialize)]
pub struct SearchResponse {
    pub traces: Vec<TraceItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceItem {
    pub trace_id: String,
    pub root_service: String,
    pub root_operation: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    pub span_count: usize,
    pub error_count: usize,
    pub services: Vec<String>,
    /// Start of the newest matching span (what the order is by).
    pub matched_unix_nano: u64,
}

impl From<TraceSummary> for TraceItem {
    fn from(s: TraceSummary) -> Self {
        TraceItem {
            trace_id: hex::encode(s.trace_id),
            root_service: s.root_service,
            root_operation: s.root_operation,
            start_unix_nano: s.start_unix_nano,
            duration_ns: s.duration_ns,
            span_count: s.span_count,
            error_count: s.error_count,
            services: s.services,
            matched_unix_nano: s.matched_unix_nano,
        }
    }
}

/// Why the request was refused before reaching the store.
#[derive(Debug)]
pub enum SearchError {
    /// `q` did not parse: 400 with the position.
    Syntax(ParseError),
    Other(Problem),
}

impl From<Problem> for SearchError {
    fn from(p: Problem) -> Self {
        SearchError::Other(p)
    }
}

#[derive(Serialize)]
struct SyntaxBody {
    error: String,
    position: usize,
}

/// The successful answer, or a syntax error in its own shape (other
/// failures go through [`ApiError`]).
enum Answer {
    Page(Json<SearchResponse>),
    Syntax(ParseError),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Page(json) => json.into_response(),
            Answer::Syntax(e) => {
                let body = SyntaxBody {
                    error: format!("invalid parameter 'q': {e}"),
                    position: e.pos,
                };
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
        }
    }
}

/// `GET /api/v1/traces`.
pub async fn search(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    state
        .metrics
        .clone()
        .timed(TRACES, search_inner(state, query))
        .await
}

async fn search_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Answer, ApiError> {
    let params = Params::from_extractor(query).map_err(ApiError::Native)?;
    let search = match parse_search(&params) {
        Ok(s) => s,
        Err(SearchError::Syntax(e)) => return Ok(Answer::Syntax(e)),
        Err(SearchError::Other(p)) => return Err(ApiError::Native(p)),
    };
    let store = state.traces.clone();
    let page: TracePage = blocking(move || Ok(store.search_traces(&search)?))
        .await
        .map_err(ApiError::Native)?;
    Ok(Answer::Page(Json(SearchResponse {
        traces: page.traces.into_iter().map(TraceItem::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    })))
}

/// Validate the parameters into a [`TraceSearch`].
pub fn parse_search(params: &Params) -> Result<TraceSearch, SearchError> {
    // `q` may legitimately be empty (all traces), so read it raw.
    let filter = lang::parse(params.get("q").unwrap_or("")).map_err(SearchError::Syntax)?;
    let time = |name: &str| -> Result<Option<u64>, Problem> {
        params
            .get(name)
            .map(|raw| parse_time_ns(raw.trim()).map_err(|e| Problem::invalid_param(name, e)))
            .transpose()
    };
    let start_unix_nano = time("start")?;
    let end_unix_nano = time("end")?;
    if let (Some(start), Some(end)) = (start_unix_nano, end_unix_nano) {
        if end < start {
            return Err(Problem::invalid_param("end", "must not be before start").into());
        }
    }
    let limit = match params.u64("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(Problem::invalid_param("limit", "must be at least 1").into()),
        Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
    };
    let cursor = params
        .get("cursor")
        .map(|raw| SearchCursor::decode(raw).map_err(|e| Problem::invalid_param("cursor", e)))
        .transpose()?;
    Ok(TraceSearch {
        filter,
        start_unix_nano,
        end_unix_nano,
        limit,
        cursor,
    })
}

#[cfg(test)]
mod tests;
