//! Rules API. `GET /api/v1/rules` lists every group with its `source`
//! (`file:<path>` or `api`), plus the last reload status and evaluation
//! errors. `PUT /api/v1/rules` replaces the API-managed groups with the
//! body (`{"groups":[…]}`, JSON or YAML); `PUT /api/v1/rules/{group}/{alert}`
//! creates or replaces one rule (`?interval=` sets a new group's interval);
//! `DELETE` removes. Groups from `--rules` files are read-only here (409).
//! `POST /api/v1/rules/reload` re-reads the files (like SIGHUP).

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::AlertsApiError;
use crate::alerts::clock::rfc3339;
use crate::alerts::rules::{rule_to_json, set_to_json};
use crate::alerts::{Alerts, AlertsError};

fn status(alerts: &Alerts) -> Value {
    let r = alerts.reload_status();
    json!({ "ok": r.ok, "error": r.error, "at": rfc3339(r.at_ms) })
}

pub async fn list(State(alerts): State<Alerts>) -> Json<Value> {
    let mut v = set_to_json(&alerts.rules());
    if let Value::Object(m) = &mut v {
        m.insert("reload".into(), status(&alerts));
        m.insert("evaluation_errors".into(), json!(alerts.eval_failures()));
    }
    Json(v)
}

pub async fn get_one(
    State(alerts): State<Alerts>,
    Path((group, alert)): Path<(String, String)>,
) -> Result<Json<Value>, AlertsApiError> {
    let (origin, g, r) = alerts.rule(&group, &alert)?;
    Ok(Json(json!({
        "group": g.name,
        "interval": humantime::format_duration(g.interval).to_string().replace(' ', ""),
        "source": origin.describe(),
        "rule": rule_to_json(&r),
    })))
}

/// Run a blocking edit (it writes and fsyncs the rules file) off the runtime.
async fn edit<F>(f: F) -> Result<(), AlertsApiError>
where
    F: FnOnce() -> Result<(), AlertsError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            AlertsApiError::from(AlertsError::Io {
                path: "rules".into(),
                message: format!("edit task failed: {e}"),
            })
        })?
        .map_err(AlertsApiError::from)
}

pub async fn put_all(
    State(alerts): State<Alerts>,
    body: String,
) -> Result<Json<Value>, AlertsApiError> {
    let a = alerts.clone();
    edit(move || a.put_api_groups(&body)).await?;
    Ok(list(State(alerts)).await)
}

pub async fn delete_all(State(alerts): State<Alerts>) -> Result<Json<Value>, AlertsApiError> {
    let a = alerts.clone();
    edit(move || a.delete_api_groups()).await?;
    Ok(list(State(alerts)).await)
}

pub async fn put_one(
    State(alerts): State<Alerts>,
    Path((group, alert)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    body: String,
) -> Result<Json<Value>, AlertsApiError> {
    let mut interval = None;
    for (k, v) in q {
        match k.as_str() {
            "interval" => {
                let d = humantime::parse_duration(&v).map_err(|e| {
                    AlertsApiError::bad_request(format!("invalid parameter 'interval': {e}"))
                })?;
                if d < std::time::Duration::from_millis(100)
                    || d > std::time::Duration::from_secs(3600)
                {
                    return Err(AlertsApiError::bad_request(
                        "invalid parameter 'interval': must be between 100ms and 1h",
                    ));
                }
                interval = Some(d);
            }
            other => {
                return Err(AlertsApiError::bad_request(format!(
                    "unknown parameter '{other}'"
                )))
            }
        }
    }
    let a = alerts.clone();
    let (g, al) = (group.clone(), alert.clone());
    edit(move || a.put_rule(&g, &al, &body, interval)).await?;
    get_one(State(alerts), Path((group, alert))).await
}

pub async fn delete_one(
    State(alerts): State<Alerts>,
    Path((group, alert)): Path<(String, String)>,
) -> Result<Json<Value>, AlertsApiError> {
    let a = alerts.clone();
    edit(move || a.delete_rule(&group, &alert)).await?;
    Ok(Json(json!({ "deleted": true })))
}

pub async fn reload(State(alerts): State<Alerts>) -> Result<Json<Value>, AlertsApiError> {
    let a = alerts.clone();
    edit(move || a.reload().map_err(AlertsError::Rules)).await?;
    Ok(Json(json!({ "reload": status(&alerts) })))
}
