//! The one error type of the HTTP query side, and the one mapping from error
//! kind to HTTP status.
//!
//! A [`Problem`] says what went wrong ([`ErrorKind`] + message); an
//! [`ApiError`] says in which shape to answer: Jaeger's
//! `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code","msg"}]}`
//! for the Jaeger API, `{"error":"…"}` for the native `/api/v1` API.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::query::QueryError;

/// What went wrong, independent of the answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request parameter is malformed or out of range, or the store said
    /// the query is invalid.
    BadRequest,
    /// The thing asked for does not exist (unknown trace, unknown path).
    NotFound,
    /// The request or its answer would be too large.
    TooLarge,
    /// Our fault: storage failure, a panicked query task.
    Internal,
    /// Temporarily unable to answer: shutting down, not ready.
    Unavailable,
}

impl ErrorKind {
    /// The single kind → status mapping.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error kind with a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ErrorKind,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
        }
    }

    /// `invalid parameter '<name>': <why>` (400).
    pub fn invalid_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::BadRequest,
            format!("invalid parameter '{name}': {why}"),
        )
    }

    /// `missing parameter '<name>'` (400).
    pub fn missing_param(name: &str) -> Self {
        Self::new(ErrorKind::BadRequest, format!("missing parameter '{name}'"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl From<QueryError> for Problem {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(msg) => {
                Problem::new(ErrorKind::BadRequest, format!("invalid query: {msg}"))
            }
            QueryError::Storage(msg) => Problem::internal(format!("storage error: {msg}")),
        }
    }
}

/// An error answer, in the shape of the API that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Jaeger query API (`/api/…`).
    Jaeger(Problem),
    /// Native API (`/api/v1/…`).
    Native(Problem),
}

impl ApiError {
    pub fn problem(&self) -> &Problem {
        match self {
            ApiError::Jaeger(p) | ApiError::Native(p) => p,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.problem().status()
    }
}

/// Jaeger's `structuredError`.
#[derive(Debug, Serialize)]
pub struct JaegerErrorItem {
    pub code: u16,
    pub msg: String,
}

/// Jaeger's `structuredResponse` carrying errors.
#[derive(Debug, Serialize)]
struct JaegerErrorBody {
    data: Option<()>,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Vec<JaegerErrorItem>,
}

#[derive(Debug, Serialize)]
struct NativeErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                "query failed: {}",
                self.problem().message
            );
        }
        match self {
            ApiError::Jaeger(p) => {
                let body = JaegerErrorBody {
                    data: None,
                    total: 0,
                    limit: 0,
                    offset: 0,
                    errors: vec![JaegerErrorItem {
                        code: status.as_u16(),
                        msg: p.message,
                    }],
                };
                (status, Json(body)).into_response()
            }
            ApiError::Native(p) => {
                (status, Json(NativeErrorBody { error: &p.message })).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    async fn body(resp: Response) -> (StatusCode, Value) {
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn one_mapping_from_kind_to_status() {
        let table = [
            (ErrorKind::BadRequest, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::Internal, 500),
            (ErrorKind::Unavailable, 503),
        ];
        for (kind, code) in table {
            assert_eq!(kind.status().as_u16(), code, "{kind:?}");
        }
    }

    #[test]
    fn query_errors_map_to_400_and_500() {
        assert_eq!(
            Problem::from(QueryError::Invalid("bad".into())).kind,
            ErrorKind::BadRequest
        );
        assert_eq!(
            Problem::from(QueryError::Storage("disk".into())).kind,
            ErrorKind::Internal
        );
    }

    #[tokio::test]
    async fn jaeger_shape() {
        let resp =
            ApiError::Jaeger(Problem::invalid_param("limit", "not a number")).into_response();
        let (status, v) = body(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            v,
            json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                   "errors": [{"code": 400, "msg": "invalid parameter 'limit': not a number"}]})
        );
    }

    #[tokio::test]
    async fn native_shape() {
        let resp = ApiError::Native(Problem::internal("storage error: boom")).into_response();
        let (status, v) = body(resp).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(v, json!({"error": "storage error: boom"}));
    }
}
