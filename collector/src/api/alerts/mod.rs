//! The alerting API under `/api/v1`: active alerts, history, rules (CRUD,
//! reload) and silences, over an [`Alerts`] handle. Errors answer the
//! native shape `{"error": "…"}` (rule validation errors add `file`,
//! `line`, `column`, `key`). Layout:
//!
//! ```text
//! mod.rs       routes, split into read and write routers (auth is applied by the pipeline)
//! error.rs     AlertsApiError → status (400, 404, 409, 500)
//! active.rs    GET /api/v1/alerts, GET /api/v1/alerts/history
//! rules.rs     GET/PUT/DELETE /api/v1/rules[/{group}/{alert}], POST /api/v1/rules/reload
//! silences.rs  GET/POST /api/v1/silences, GET/DELETE /api/v1/silences/{id}
//! ```

mod active;
mod error;
mod rules;
mod silences;
#[cfg(test)]
mod tests;

use axum::routing::{get, post};
use axum::Router;

pub use error::AlertsApiError;

use crate::alerts::Alerts;

pub const ALERTS: &str = "/api/v1/alerts";
pub const HISTORY: &str = "/api/v1/alerts/history";
pub const RULES: &str = "/api/v1/rules";
pub const RULE: &str = "/api/v1/rules/{group}/{alert}";
pub const RELOAD: &str = "/api/v1/rules/reload";
pub const SILENCES: &str = "/api/v1/silences";
pub const SILENCE: &str = "/api/v1/silences/{id}";

/// Largest accepted rule or silence body.
pub const MAX_BODY: usize = 1 << 20;

/// Routes that only read (GET).
pub fn read_routes(alerts: Alerts) -> Router {
    Router::new()
        .route(ALERTS, get(active::list))
        .route(HISTORY, get(active::history))
        .route(RULES, get(rules::list))
        .route(RULE, get(rules::get_one))
        .route(SILENCES, get(silences::list))
        .route(SILENCE, get(silences::get_one))
        .with_state(alerts)
}

/// Routes that change state (PUT, POST, DELETE).
pub fn write_routes(alerts: Alerts) -> Router {
    Router::new()
        .route(
            RULES,
            axum::routing::put(rules::put_all).delete(rules::delete_all),
        )
        .route(
            RULE,
            axum::routing::put(rules::put_one).delete(rules::delete_one),
        )
        .route(RELOAD, post(rules::reload))
        .route(SILENCES, post(silences::create))
        .route(SILENCE, axum::routing::delete(silences::expire))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(alerts)
}

/// Both, for tests and set-ups without auth.
pub fn routes(alerts: Alerts) -> Router {
    read_routes(alerts.clone()).merge(write_routes(alerts))
}
