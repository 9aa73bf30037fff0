//! User rules end to end: each span/log rule kind fires and resolves on data
//! sent with the Rust OpenTelemetry SDK, with `for` honoured; webhook
//! receivers get Alertmanager v4 payloads (firing, then resolved); a real
//! Alertmanager shows Skein's alert; silences suppress notifications; a
//! broken rule file is rejected at start-up naming its line; a reload keeps
//! the old rules on error.

use std::time::{Duration, Instant, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::{json, Value};
use skein_e2e::alerts::{rule_file, Alertmanager, AlertsApi, Webhook};
use skein_e2e::{wait_for, wait_until, Collector};

const WAIT: Duration = Duration::from_secs(30);

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_string())
        .build()
}

/// Send spans `(duration, error)` for `service` with the SDK over OTLP/HTTP.
fn send_spans(c: &Collector, service: &str, spans: &[(Duration, bool)]) {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", c.otlp_http_base()))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("span exporter");
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(service))
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("skein-e2e-alerts");
    for (duration, error) in spans {
        let end = SystemTime::now();
        let mut span = tracer
            .span_builder("POST /checkout")
            .with_kind(SpanKind::Server)
            .with_start_time(end - *duration)
            .start(&tracer);
        if *error {
            span.set_status(Status::error("boom"));
        }
        span.end_with_timestamp(end);
    }
    provider.force_flush().expect("flushing spans");
    provider.shutdown().expect("tracer provider shutdown");
}

/// Send log records with the SDK's Logs Bridge API.
fn send_logs(c: &Collector, service: &str, bodies: &[&str]) {
    let exporter = LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/logs", c.otlp_http_base()))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("log exporter");
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource(service))
        .with_batch_exporter(exporter)
        .build();
    let logger = provider.logger("skein-e2e-alerts");
    for body in bodies {
        let mut r = logger.create_log_record();
        r.set_timestamp(SystemTime::now());
        r.set_severity_number(Severity::Error);
        r.set_severity_text("ERROR");
        r.set_body(AnyValue::String(body.to_string().into()));
        logger.emit(r);
    }
    provider.force_flush().expect("flushing logs");
    provider.shutdown().expect("logger provider shutdown");
}

/// Start a collector with `rules` (YAML) and extra flags.
fn collector_with_rules(rules: &str, extra: &[&str]) -> (Collector, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = rule_file(dir.path(), "rules.yaml", rules);
    let mut args = vec!["--rules", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    (Collector::start_fast(&args), dir)
}

/// Poll until `name` is active and pending, then until it fires; returns how
/// long it stayed pending (as observed) and the firing alert.
fn pending_then_firing(api: &AlertsApi, name: &str) -> (Duration, Value) {
    wait_until(WAIT, &format!("{name} pending"), || {
        api.alert(name).is_some_and(|a| a["state"] == "pending")
    });
    let pending_seen = Instant::now();
    let a = wait_for(WAIT, &format!("{name} firing"), || {
        api.alert(name).filter(|a| a["state"] == "firing")
    });
    (pending_seen.elapsed(), a)
}

fn resolved_in_history(api: &AlertsApi, name: &str) -> Value {
    wait_for(WAIT, &format!("{name} resolved"), || {
        if api.alert(name).is_some() {
            return None;
        }
        api.history()
            .into_iter()
            .find(|h| h["name"] == name && h["state"] == "resolved")
    })
}

#[test]
fn error_rate_fires_after_for_notifies_v4_and_resolves() {
    let hook = Webhook::start();
    let (c, _dir) = collector_with_rules(
        "
groups:
  - name: checkout
    interval: 300ms
    rules:
      - alert: CheckoutErrors
        kind: error_rate
        service: checkout
        threshold: 0.5
        window: 8s
        for: 2s
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.service }} error rate {{ $value }}'
",
        &["--webhook", &hook.url, "--group-wait", "500ms"],
    );
    let api = AlertsApi::new(&c.http_base());
    let ms = Duration::from_millis(5);
    send_spans(
        &c,
        "checkout",
        &[(ms, true), (ms, true), (ms, true), (ms, false)],
    );

    let (pending_for, a) = pending_then_firing(&api, "CheckoutErrors");
    assert!(
        pending_for >= Duration::from_millis(1500),
        "fired after {pending_for:?}, before for: 2s"
    );
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["annotations"]["summary"], "checkout error rate 0.75");
    assert_eq!(a["value"], 0.75);
    let fingerprint = a["fingerprint"].as_str().unwrap().to_string();

    let firing = wait_for(WAIT, "a firing webhook", || {
        hook.payloads()
            .into_iter()
            .find(|p| p["status"] == "firing")
    });
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "webhook-0");
    assert_eq!(
        firing["groupKey"],
        "{}:{alertname=\"CheckoutErrors\", service=\"checkout\"}"
    );
    assert_eq!(
        firing["groupLabels"],
        json!({"alertname": "CheckoutErrors", "service": "checkout"})
    );
    assert_eq!(firing["commonLabels"]["severity"], "page");
    assert_eq!(firing["truncatedAlerts"], 0);
    assert_eq!(firing["externalURL"], c.http_base());
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["fingerprint"], fingerprint.as_str());
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    for key in ["labels", "annotations", "startsAt", "generatorURL"] {
        assert!(alert.get(key).is_some(), "{key} missing in {alert}");
    }

    // The errors age out of the 8 s window: resolved, notified once.
    let h = resolved_in_history(&api, "CheckoutErrors");
    assert_eq!(h["fingerprint"], fingerprint.as_str());
    let resolved = wait_for(WAIT, "a resolved webhook", || {
        hook.payloads()
            .into_iter()
            .find(|p| p["status"] == "resolved")
    });
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["fingerprint"], fingerprint.as_str());
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    let firing_count = hook
        .payloads()
        .iter()
        .filter(|p| p["status"] == "firing")
        .count();
    assert_eq!(firing_count, 1, "de-duplicated: one firing notification");
}

#[test]
fn latency_quantile_fires_and_resolves() {
    let (c, _dir) = collector_with_rules(
        "
groups:
  - name: latency
    interval: 300ms
    rules:
      - {alert: SlowCheckout, kind: latency, service: checkout, quantile: 0.9, threshold: 200ms, window: 8s, for: 1s}
",
        &[],
    );
    let api = AlertsApi::new(&c.http_base());
    let slow = Duration::from_millis(400);
    send_spans(
        &c,
        "checkout",
        &[(slow, false), (slow, false), (slow, false)],
    );
    let (pending_for, a) = pending_then_firing(&api, "SlowCheckout");
    assert!(
        pending_for >= Duration::from_millis(500),
        "for: 1s not honoured ({pending_for:?})"
    );
    let v = a["value"].as_f64().unwrap();
    assert!(
        (0.39..0.41).contains(&v),
        "p90 of 400 ms spans, in seconds: {v}"
    );
    resolved_in_history(&api, "SlowCheckout");
}

#[test]
fn log_match_fires_and_resolves() {
    let (c, _dir) = collector_with_rules(
        "
groups:
  - name: logs
    interval: 300ms
    rules:
      - alert: PaymentsDeclined
        kind: log_match
        service: payments
        query: declined
        threshold: 2
        window: 8s
        for: 1s
        annotations: {summary: '{{ $value }} declined payments'}
",
        &[],
    );
    let api = AlertsApi::new(&c.http_base());
    send_logs(
        &c,
        "payments",
        &[
            "card declined",
            "payment declined",
            "declined again",
            "all fine",
        ],
    );
    let (pending_for, a) = pending_then_firing(&api, "PaymentsDeclined");
    assert!(
        pending_for >= Duration::from_millis(500),
        "for: 1s not honoured ({pending_for:?})"
    );
    assert_eq!(a["annotations"]["summary"], "3 declined payments");
    resolved_in_history(&api, "PaymentsDeclined");
}

#[test]
fn silences_suppress_notifications_until_they_expire() {
    let hook = Webhook::start();
    let (c, _dir) = collector_with_rules(
        "
groups:
  - name: logs
    interval: 300ms
    rules:
      - {alert: Silenced, kind: log_match, query: alpha, threshold: 0, window: 1h}
      - {alert: Control, kind: log_match, query: beta, threshold: 0, window: 1h}
",
        &["--webhook", &hook.url, "--group-wait", "300ms"],
    );
    let api = AlertsApi::new(&c.http_base());
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "Silenced", "isRegex": false, "isEqual": true}],
        "endsAt": "2100-01-01T00:00:00Z", "createdBy": "e2e", "comment": "maintenance window"
    });
    let (status, v) = api.send("POST", "/api/v1/silences", &silence.to_string());
    assert_eq!(status, 200, "{v}");
    let id = v["silenceID"].as_str().unwrap().to_string();

    send_logs(&c, "svc", &["alpha happened", "beta happened"]);
    wait_until(WAIT, "Control notified", || {
        hook.alerts()
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "Control")
    });
    let silenced = wait_for(WAIT, "Silenced firing", || {
        api.alert("Silenced").filter(|a| a["state"] == "firing")
    });
    assert_eq!(silenced["silenced_by"], json!([id]));
    // Both fired in the same evaluations; give the silenced one three more
    // group waits (observed on the alert, not slept blindly) to show up.
    let seen = Instant::now();
    wait_until(WAIT, "three group waits", || {
        seen.elapsed() > Duration::from_millis(900) && api.alert("Silenced").is_some()
    });
    assert!(
        !hook
            .alerts()
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "Silenced"),
        "a silenced alert was notified: {:?}",
        hook.payloads()
    );

    // Expire the silence: it stays listed, and the alert is notified now.
    let (status, _) = api.send("DELETE", &format!("/api/v1/silences/{id}"), "");
    assert_eq!(status, 200);
    assert_eq!(
        api.get(&format!("/api/v1/silences/{id}"))["status"]["state"],
        "expired"
    );
    wait_until(WAIT, "Silenced notified after the silence expired", || {
        hook.alerts()
            .iter()
            .any(|(s, a)| s == "firing" && a["labels"]["alertname"] == "Silenced")
    });
}

#[test]
fn a_real_alertmanager_shows_skeins_alert() {
    let am = Alertmanager::start();
    // No registry instances of `cart` at all: fires at once, no data needed.
    let (c, _dir) = collector_with_rules(
        "groups: [{name: capacity, interval: 300ms, rules: [{alert: NoCarts, kind: too_few_instances, service: cart, min: 1, labels: {severity: critical}, annotations: {summary: 'only {{ $value }} cart instances'}}]}]",
        &["--alertmanager", &am.base],
    );
    let api = AlertsApi::new(&c.http_base());
    let ours = wait_for(WAIT, "NoCarts firing", || {
        api.alert("NoCarts").filter(|a| a["state"] == "firing")
    });
    let theirs = wait_for(WAIT, "NoCarts in Alertmanager", || {
        am.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "NoCarts")
    });
    assert_eq!(theirs["labels"]["service"], "cart");
    assert_eq!(theirs["labels"]["severity"], "critical");
    assert_eq!(theirs["annotations"]["summary"], "only 0 cart instances");
    assert_eq!(
        theirs["fingerprint"], ours["fingerprint"],
        "same fingerprint algorithm"
    );
    assert_eq!(theirs["status"]["state"], "active");
    assert!(theirs["generatorURL"]
        .as_str()
        .unwrap()
        .starts_with(&c.http_base()));
    let metrics = reqwest::blocking::get(format!("{}/metrics", c.http_base()))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .contains("skein_notifications_total{receiver=\"alertmanager-0\",result=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("skein_alerts{alertname=\"NoCarts\",state=\"firing\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_broken_rule_file_is_rejected_at_startup_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = rule_file(
        dir.path(),
        "broken.yaml",
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: error_rate\n        service: a\n        threshold: lots\n        window: 5m\n",
    );
    let out = std::process::Command::new(skein_e2e::collector::collector_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--rules")
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .expect("running the collector");
    assert!(!out.status.success(), "started with a broken rule file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.yaml:7:"), "{stderr}");
    assert!(
        stderr.contains("key 'groups[0].rules[0].threshold'"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening http="),
        "failed before listening: {stderr}"
    );
}

#[test]
fn reload_on_sighup_and_api_keeps_old_rules_on_error() {
    let (c, dir) = collector_with_rules("groups: [{name: a, interval: 300ms, rules: []}]", &[]);
    let api = AlertsApi::new(&c.http_base());
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, "groups: [{name: a, interval: 300ms, rules: [{alert: NoCarts, kind: too_few_instances, service: cart, min: 1}]}]").unwrap();
    let pid = c.pid().expect("running") as libc::pid_t;
    // SAFETY: kill(2) on our own running child.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    wait_until(WAIT, "NoCarts after SIGHUP", || {
        api.alert("NoCarts").is_some()
    });

    std::fs::write(&file, "groups: [{name: a, rules: [{alert: NoCarts, kind: too_few_instances, service: cart, min: zero}]}]").unwrap();
    let (status, v) = api.send("POST", "/api/v1/rules/reload", "");
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["line"], 1);
    let rules = api.get("/api/v1/rules");
    assert_eq!(rules["reload"]["ok"], false);
    assert_eq!(
        rules["groups"][0]["rules"][0]["min"], 1,
        "old rules kept: {rules}"
    );
    let metrics = reqwest::blocking::get(format!("{}/metrics", c.http_base()))
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("skein_alerts_rules_valid 0"), "{metrics}");
    assert!(api.alert("NoCarts").is_some(), "still evaluated");
}
