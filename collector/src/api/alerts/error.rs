//! The alerting API's error answer and its one kind → status mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::alerts::AlertsError;

/// An error answer: `{"error": "…"}` with a status.
#[derive(Debug)]
pub struct AlertsApiError {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl AlertsApiError {
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        AlertsApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "error": message.to_string() }),
        }
    }
}

impl From<AlertsError> for AlertsApiError {
    fn from(e: AlertsError) -> Self {
        use crate::alerts::silences::SilenceError;
        let status = match &e {
            AlertsError::Rules(_) | AlertsError::Silence(SilenceError::Invalid(_)) => {
                StatusCode::BAD_REQUEST
            }
            AlertsError::NotFound(_) | AlertsError::Silence(SilenceError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            AlertsError::Conflict(_) | AlertsError::Silence(SilenceError::Full) => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = match &e {
            AlertsError::Rules(r) => json!({
                "error": e.to_string(),
                "file": r.file, "line": r.line, "column": r.column, "key": r.key,
            }),
            _ => json!({ "error": e.to_string() }),
        };
        if status.is_server_error() {
            tracing::warn!("alerting API failed: {e}");
        }
        AlertsApiError { status, body }
    }
}

impl IntoResponse for AlertsApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
