//! `GET /api/v1/alerts[?fingerprint=]` → `{"alerts":[{name, state, labels,
//! annotations, value, active_at, fired_at, fingerprint, silenced_by}]}`;
//! `GET /api/v1/alerts/history?start=&end=` → `{"alerts":[…resolved…]}`
//! (times RFC 3339 or Unix ns; default the last 24 h).

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::AlertsApiError;
use crate::alerts::clock::rfc3339;
use crate::alerts::Alerts;
use crate::api::timestamp::parse_time_ns;

pub async fn list(
    State(alerts): State<Alerts>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, AlertsApiError> {
    let mut fingerprint = None;
    for (k, v) in q {
        match k.as_str() {
            "fingerprint" => fingerprint = Some(v),
            other => {
                return Err(AlertsApiError::bad_request(format!(
                    "unknown parameter '{other}'"
                )))
            }
        }
    }
    let mut list: Vec<Value> = alerts
        .alerts()
        .into_iter()
        .filter(|(a, _)| fingerprint.as_deref().is_none_or(|f| a.fingerprint == f))
        .map(|(a, silenced_by)| {
            json!({
                "name": a.alertname(),
                "state": a.state.as_str(),
                "labels": a.labels,
                "annotations": a.annotations,
                "value": a.value,
                "active_at": rfc3339(a.active_at_ms),
                "fired_at": a.fired_at_ms.map(rfc3339),
                "fingerprint": a.fingerprint,
                "group": a.group,
                "silenced_by": silenced_by,
            })
        })
        .collect();
    list.sort_by(|a, b| {
        a["name"]
            .as_str()
            .cmp(&b["name"].as_str())
            .then(a["fingerprint"].as_str().cmp(&b["fingerprint"].as_str()))
    });
    Ok(Json(json!({ "alerts": list })))
}

pub async fn history(
    State(alerts): State<Alerts>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, AlertsApiError> {
    let now = alerts.now_ms();
    let (mut start, mut end) = (now.saturating_sub(86_400_000), now);
    for (k, v) in q {
        let ms = || {
            parse_time_ns(&v)
                .map(|ns| ns / 1_000_000)
                .map_err(|e| AlertsApiError::bad_request(format!("invalid parameter '{k}': {e}")))
        };
        match k.as_str() {
            "start" => start = ms()?,
            "end" => end = ms()?,
            other => {
                return Err(AlertsApiError::bad_request(format!(
                    "unknown parameter '{other}'"
                )))
            }
        }
    }
    if start > end {
        return Err(AlertsApiError::bad_request(
            "invalid parameter 'start': after 'end'",
        ));
    }
    let list: Vec<Value> = alerts
        .history(start, end)
        .into_iter()
        .map(|e| {
            json!({
                "name": e.name,
                "state": e.state,
                "labels": e.labels,
                "annotations": e.annotations,
                "value": e.value,
                "active_at": rfc3339(e.active_at_ms),
                "fired_at": e.fired_at_ms.map(rfc3339),
                "resolved_at": rfc3339(e.resolved_at_ms),
                "fingerprint": e.fingerprint,
            })
        })
        .collect();
    Ok(Json(json!({ "alerts": list })))
}
