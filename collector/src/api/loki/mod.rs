//! The Loki HTTP API subset Grafana's Loki data source uses, under
//! `/loki/api/v1/`: `query`, `query_range`, `labels`, `label/{name}/values`,
//! `series` and `index/stats`.
//!
//! Owns request parameters (`params.rs`: Loki's time, step, limit and
//! direction rules), the JSON answers (`response.rs`: streams with the
//! optional `categorize-labels` encoding, matrix, vector, scalar, Loki's
//! error shape) and the handlers (`handlers.rs`). LogQL itself lives in
//! [`crate::query::logql`]; storage is reached only through
//! [`crate::query::LogStore`].

pub mod handlers;
pub mod params;
pub mod response;
#[cfg(test)]
mod tests;

use axum::routing::{any, get};
use axum::Router;

use super::ApiState;

pub const QUERY: &str = "/loki/api/v1/query";
pub const QUERY_RANGE: &str = "/loki/api/v1/query_range";
pub const LABELS: &str = "/loki/api/v1/labels";
pub const LABEL: &str = "/loki/api/v1/label";
pub const LABEL_VALUES: &str = "/loki/api/v1/label/{name}/values";
pub const SERIES: &str = "/loki/api/v1/series";
pub const INDEX_STATS: &str = "/loki/api/v1/index/stats";

/// The Loki routes (read routes: `--auth-read` applies when set).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(QUERY, get(handlers::query))
        .route(QUERY_RANGE, get(handlers::query_range))
        .route(LABELS, get(handlers::labels))
        .route(LABEL, get(handlers::labels))
        .route(LABEL_VALUES, get(handlers::label_values))
        .route(SERIES, get(handlers::series))
        .route(INDEX_STATS, get(handlers::index_stats))
        .route("/loki/{*rest}", any(handlers::unknown))
}
