//! Silences API, Alertmanager-shaped: `POST /api/v1/silences` with
//! `{"matchers":[{"name","value","isRegex","isEqual"}],"startsAt","endsAt",
//! "createdBy","comment"}` (an `id` updates that silence) → `{"silenceID"}`;
//! `GET` lists all (expired ones too) with `status.state`; `DELETE /{id}`
//! expires a silence, which stays listed.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::AlertsApiError;
use crate::alerts::silences::SilenceInput;
use crate::alerts::{Alerts, AlertsError};

pub async fn list(State(alerts): State<Alerts>) -> Json<Value> {
    let now = alerts.now_ms();
    let list: Vec<Value> = alerts.silences().iter().map(|s| s.to_json(now)).collect();
    Json(json!({ "silences": list }))
}

pub async fn get_one(
    State(alerts): State<Alerts>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AlertsApiError> {
    let s = alerts
        .silence(&id)
        .ok_or_else(|| AlertsError::NotFound(format!("no silence with id '{id}'")))?;
    Ok(Json(s.to_json(alerts.now_ms())))
}

/// The body is read as JSON whatever its content type (curl users forget it).
pub async fn create(
    State(alerts): State<Alerts>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AlertsApiError> {
    let input: SilenceInput = serde_json::from_slice(&body)
        .map_err(|e| AlertsApiError::bad_request(format!("invalid silence: {e}")))?;
    let id = tokio::task::spawn_blocking(move || alerts.post_silence(input))
        .await
        .map_err(|e| {
            AlertsApiError::from(AlertsError::Io {
                path: "silences".into(),
                message: format!("silence task failed: {e}"),
            })
        })??;
    Ok(Json(json!({ "silenceID": id })))
}

pub async fn expire(
    State(alerts): State<Alerts>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AlertsApiError> {
    tokio::task::spawn_blocking(move || alerts.expire_silence(&id))
        .await
        .map_err(|e| {
            AlertsApiError::from(AlertsError::Io {
                path: "silences".into(),
                message: format!("silence task failed: {e}"),
            })
        })??;
    Ok(Json(json!({ "expired": true })))
}
