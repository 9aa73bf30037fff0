//! The alerting API over a real [`Alerts`] handle on a temp dir (no
//! sockets: `oneshot`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::alerts::clock::FakeClock;
use crate::alerts::metrics::AlertMetrics;
use crate::alerts::{Alerts, AlertsConfig};

struct T {
    _dir: tempfile::TempDir,
    alerts: Alerts,
    rules_rx: tokio::sync::watch::Receiver<crate::alerts::rules::RuleSet>,
}

fn open(dir: tempfile::TempDir, files: Vec<std::path::PathBuf>) -> T {
    let mut cfg = AlertsConfig::new(dir.path().join("alerts"), "http://x".into());
    cfg.rule_files = files;
    let metrics = AlertMetrics::register(&prometheus::Registry::new()).unwrap();
    let (alerts, rules_rx) =
        Alerts::open(cfg, Arc::new(FakeClock::new(1_700_000_000_000)), metrics).unwrap();
    T {
        _dir: dir,
        alerts,
        rules_rx,
    }
}

async fn call(t: &T, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = super::routes(t.alerts.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const FILE: &str = "groups:\n  - name: from-file\n    rules:\n      - alert: FewCarts\n        kind: too_few_instances\n        service: cart\n        min: 2\n";

#[tokio::test]
async fn rules_crud_is_validated_persisted_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, FILE).unwrap();
    let mut t = open(dir, vec![file]);

    let body = r#"{"kind": "error_rate", "service": "checkout", "threshold": 0.05, "window": "5m", "for": "1m",
                  "labels": {"severity": "page"}, "annotations": {"summary": "{{ $labels.service }} at {{ $value }}"}}"#;
    let (s, v) = call(
        &t,
        "PUT",
        "/api/v1/rules/checkout/CheckoutErrors?interval=15s",
        body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "api");
    assert_eq!(v["interval"], "15s");
    assert_eq!(v["rule"]["alert"], "CheckoutErrors");
    assert_eq!(v["rule"]["for"], "1m");
    assert!(
        t.rules_rx.has_changed().unwrap(),
        "the evaluation task is told"
    );
    assert_eq!(t.rules_rx.borrow_and_update().groups.len(), 2);

    let (_, v) = call(&t, "GET", "/api/v1/rules", "").await;
    let names: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from-file", "checkout"]);
    assert_eq!(v["groups"][0]["editable"], false);
    assert_eq!(v["reload"]["ok"], true);

    // The whole answer can be PUT back unchanged (source/editable ignored).
    let api_only = json!({"groups": [v["groups"][1].clone()]});
    let (s, v2) = call(&t, "PUT", "/api/v1/rules", &api_only.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["groups"][1]["rules"], v["groups"][1]["rules"]);

    // Invalid: 400 naming line and key.
    let (s, v) = call(
        &t,
        "PUT",
        "/api/v1/rules/checkout/Bad",
        "kind: error_rate\nservice: checkout\nthreshold: 5\nwindow: 5m\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        (v["line"].as_u64(), v["key"].as_str()),
        (Some(3), Some("threshold")),
        "{v}"
    );

    // Groups from files are read-only here.
    let (s, v) = call(
        &t,
        "PUT",
        "/api/v1/rules/from-file/X",
        "kind: too_few_instances\nservice: a\nmin: 1\n",
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // Reopen: the API rules were persisted.
    let dir_path = t._dir.path().to_path_buf();
    let reopened = {
        let metrics = AlertMetrics::register(&prometheus::Registry::new()).unwrap();
        let mut cfg = AlertsConfig::new(dir_path.join("alerts"), "http://x".into());
        cfg.rule_files = vec![dir_path.join("rules.yaml")];
        Alerts::open(cfg, Arc::new(FakeClock::new(0)), metrics)
            .unwrap()
            .0
    };
    assert!(reopened.rule("checkout", "CheckoutErrors").is_ok());

    let (s, _) = call(&t, "DELETE", "/api/v1/rules/checkout/CheckoutErrors", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&t, "DELETE", "/api/v1/rules/checkout/CheckoutErrors", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&t, "GET", "/api/v1/rules/checkout/CheckoutErrors", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failed_reload_keeps_the_old_rules_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, FILE).unwrap();
    let t = open(dir, vec![file.clone()]);
    std::fs::write(&file, FILE.replace("min: 2", "min: two")).unwrap();
    let (s, v) = call(&t, "POST", "/api/v1/rules/reload", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["line"], 7);
    assert_eq!(v["key"], "groups[0].rules[0].min");
    let (_, v) = call(&t, "GET", "/api/v1/rules", "").await;
    assert_eq!(v["reload"]["ok"], false);
    assert!(
        v["reload"]["error"]
            .as_str()
            .unwrap()
            .contains("rules.yaml:7:"),
        "{v}"
    );
    assert_eq!(v["groups"][0]["rules"][0]["min"], 2, "old rules kept");
    assert_eq!(t.alerts.metrics().rules_valid.get(), 0);

    std::fs::write(&file, FILE).unwrap();
    let (s, v) = call(&t, "POST", "/api/v1/rules/reload", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(t.alerts.metrics().rules_valid.get(), 1);
}

#[tokio::test]
async fn silences_are_created_listed_and_expired() {
    let t = open(tempfile::tempdir().unwrap(), vec![]);
    let body = json!({
        "matchers": [{"name": "service", "value": "checkout", "isRegex": false, "isEqual": true}],
        "endsAt": "2100-01-01T00:00:00Z", "createdBy": "ops", "comment": "deploy"
    });
    let (s, v) = call(&t, "POST", "/api/v1/silences", &body.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["silenceID"].as_str().unwrap().to_string();
    let (_, v) = call(&t, "GET", "/api/v1/silences", "").await;
    assert_eq!(v["silences"][0]["status"]["state"], "active");
    assert_eq!(v["silences"][0]["createdBy"], "ops");
    let (s, _) = call(&t, "DELETE", &format!("/api/v1/silences/{id}"), "").await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = call(&t, "GET", &format!("/api/v1/silences/{id}"), "").await;
    assert_eq!(v["status"]["state"], "expired", "expired, still listed");
    let (s, _) = call(&t, "DELETE", "/api/v1/silences/nope", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(&t, "POST", "/api/v1/silences", r#"{"matchers": []}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(&t, "GET", "/api/v1/alerts/history?start=yesterday", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(&t, "GET", "/api/v1/alerts", "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"alerts": []})));
}
