//! Native trace API over the reconstruction in [`crate::traces`]:
//!
//! - `GET /api/v1/traces/{trace_id}[?fields=summary]`: the tree, orphans,
//!   critical path, clock-skew adjustments and (unless `fields=summary`) the
//!   spans;
//! - `GET /api/v1/traces/compare?a=&b=`: the structural diff of two traces.
//!
//! `model.rs` holds the JSON shapes, `handlers.rs` the endpoints. Trace
//! search (`GET /api/v1/traces`) is not here. This module must not touch
//! storage internals (only [`crate::query::TraceStore`]).

pub mod handlers;
pub mod model;

#[cfg(test)]
mod tests;

use axum::routing::get;
use axum::Router;

use super::ApiState;

/// The native trace routes. The static `compare` segment takes precedence
/// over `{trace_id}`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(handlers::COMPARE, get(handlers::compare))
        .route(handlers::TRACE, get(handlers::trace))
}
