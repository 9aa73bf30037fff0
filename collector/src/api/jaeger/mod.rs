//! Jaeger query API at the HTTP root, for Grafana's Jaeger data source and
//! Jaeger's own UI (contract: `contracts/grafana.md`, Jaeger part).
//!
//! - `model.rs`: Jaeger's JSON shapes;
//! - `convert.rs`: OTLP span records → those shapes;
//! - `params.rs`: request parameters → validated queries;
//! - `handlers.rs`: the endpoints.

pub mod convert;
pub mod handlers;
pub mod model;
pub mod params;

#[cfg(test)]
mod tests;

use axum::routing::get;
use axum::Router;

use super::ApiState;

/// The Jaeger read routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(handlers::SERVICES, get(handlers::services))
        .route(
            handlers::SERVICE_OPERATIONS,
            get(handlers::service_operations),
        )
        .route(handlers::OPERATIONS, get(handlers::operations))
        .route(handlers::TRACES, get(handlers::search))
        .route(handlers::TRACE, get(handlers::trace))
}
