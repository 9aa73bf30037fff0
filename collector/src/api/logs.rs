//! Native log search: `GET /api/v1/logs?query=&service=&severity=&trace_id=&start=&end=&limit=`
//! → `{"logs":[{timestamp_unix_nano, service, severity_text, severity_number,
//! body, trace_id, span_id, attributes}]}`, newest first.
//!
//! Owns the parameter rules (severity names or numbers, RFC 3339 or Unix ns
//! times, limit bounds, 32-hex trace ids), the row → JSON mapping, and the
//! handler. Errors answer `{"error":"invalid parameter '<name>': …"}`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;

use super::anyvalue;
use super::error::{ApiError, Problem};
use super::params::Params;
use super::timestamp::parse_time_ns;
use super::{blocking, ApiState};
use crate::query::{LogQuery, LogRow};

pub const LOGS: &str = "/api/v1/logs";
/// Records returned without `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` honoured; larger values are capped.
pub const MAX_LIMIT: usize = 5000;

#[derive(Debug, Serialize)]
pub struct LogsResponse {
    pub logs: Vec<LogEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub timestamp_unix_nano: u64,
    pub service: String,
    pub severity_text: String,
    pub severity_number: i32,
    pub body: String,
    pub trace_id: String,
    pub span_id: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// `GET /api/v1/logs`.
pub async fn search(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> axum::response::Response {
    state
        .metrics
        .clone()
        .timed(LOGS, search_inner(state, query))
        .await
}

async fn search_inner(
    state: ApiState,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<LogsResponse>, ApiError> {
    let params = Params::from_extractor(query).map_err(ApiError::Native)?;
    let query = parse_log_query(&params).map_err(ApiError::Native)?;
    let store = state.logs.clone();
    let logs = blocking(move || {
        let rows = store.search_logs(&query)?;
        let mut logs: Vec<LogEntry> = rows.iter().map(entry).collect();
        logs.sort_by_key(|l| std::cmp::Reverse(l.timestamp_unix_nano));
        Ok(logs)
    })
    .await
    .map_err(ApiError::Native)?;
    Ok(Json(LogsResponse { logs }))
}

/// Validate the parameters into a [`LogQuery`].
pub fn parse_log_query(params: &Params) -> Result<LogQuery, Problem> {
    let min_severity = params
        .get("severity")
        .map(|raw| parse_severity(raw).map_err(|e| Problem::invalid_param("severity", e)))
        .transpose()?;
    let trace_id = params
        .get("trace_id")
        .map(|raw| parse_trace_id(raw).map_err(|e| Problem::invalid_param("trace_id", e)))
        .transpose()?;
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
            return Err(Problem::invalid_param("end", "must not be before start"));
        }
    }
    let limit = match params.u64("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(Problem::invalid_param("limit", "must be at least 1")),
        Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
    };
    Ok(LogQuery {
        text: params.get("query").map(str::to_owned),
        service: params.get("service").map(str::to_owned),
        min_severity,
        trace_id,
        start_unix_nano,
        end_unix_nano,
        limit,
    })
}

/// A minimum severity: a name (`trace|debug|info|warn|warning|error|fatal`,
/// any case) or an OTLP severity number 1–24.
pub fn parse_severity(raw: &str) -> Result<i32, String> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>() {
        return match i32::try_from(n) {
            Ok(n @ 1..=24) => Ok(n),
            _ => Err(format!("{raw} is outside the severity numbers 1-24")),
        };
    }
    match raw.to_ascii_lowercase().as_str() {
        "trace" => Ok(1),
        "debug" => Ok(5),
        "info" => Ok(9),
        "warn" | "warning" => Ok(13),
        "error" => Ok(17),
        "fatal" => Ok(21),
        _ => Err(format!(
            "\"{raw}\" is not one of trace, debug, info, warn, error, fatal or a number 1-24"
        )),
    }
}

fn parse_trace_id(raw: &str) -> Result<[u8; 16], String> {
    let mut id = [0u8; 16];
    if raw.len() != 32 {
        return Err(format!("\"{raw}\" is not 32 hex characters"));
    }
    hex::decode_to_slice(raw, &mut id)
        .map_err(|_| format!("\"{raw}\" is not 32 hex characters"))?;
    Ok(id)
}

/// One stored record as the native JSON entry.
pub fn entry(row: &LogRow) -> LogEntry {
    let r = &row.record;
    let timestamp_unix_nano = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    let severity_text = if r.severity_text.is_empty() {
        severity_name(r.severity_number).to_owned()
    } else {
        r.severity_text.clone()
    };
    LogEntry {
        timestamp_unix_nano,
        service: row.service_name().to_owned(),
        severity_text,
        severity_number: r.severity_number,
        body: anyvalue::to_text(r.body.as_ref()),
        trace_id: hex_or_empty(&r.trace_id),
        span_id: hex_or_empty(&r.span_id),
        attributes: anyvalue::attributes_to_json(&r.attributes),
    }
}

fn hex_or_empty(id: &[u8]) -> String {
    if id.iter().all(|&b| b == 0) {
        String::new()
    } else {
        hex::encode(id)
    }
}

/// OpenTelemetry's short name of a severity number (`""` when unset).
fn severity_name(n: i32) -> &'static str {
    const NAMES: [&str; 24] = [
        "TRACE", "TRACE2", "TRACE3", "TRACE4", "DEBUG", "DEBUG2", "DEBUG3", "DEBUG4", "INFO",
        "INFO2", "INFO3", "INFO4", "WARN", "WARN2", "WARN3", "WARN4", "ERROR", "ERROR2", "ERROR3",
        "ERROR4", "FATAL", "FATAL2", "FATAL3", "FATAL4",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("")
}

#[cfg(test)]
mod tests;
