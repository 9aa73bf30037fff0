//! A real Prometheus scrapes the collector; every query of the provisioned
//! *Skein overview* and *Liveness* dashboards whose metrics the collector
//! emits returns data (queries read from the dashboard JSON, variables
//! substituted). Queries over metrics other parts of Skein add later
//! (registry, alerts) are listed as skipped until the collector emits them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;
use skein_e2e::prometheus::Prometheus;
use skein_e2e::{poll_until, Collector};

fn send_telemetry(collector: &Collector) {
    let resource = Resource::builder().with_service_name("prom-e2e").build();
    let spans = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", collector.otlp_http_base()))
        .build()
        .expect("span exporter");
    let tp = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(spans)
        .build();
    let tracer = tp.tracer("prom-e2e");
    for i in 0..5 {
        let mut span = tracer.start(format!("GET /item/{}", i % 2));
        span.end();
    }
    tp.force_flush().expect("flush spans");
    tp.shutdown().expect("shutdown");
    let logs = LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/logs", collector.otlp_http_base()))
        .build()
        .expect("log exporter");
    let lp = SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(logs)
        .build();
    let logger = lp.logger("prom-e2e");
    let mut record = logger.create_log_record();
    record.set_timestamp(SystemTime::now());
    record.set_severity_number(Severity::Info);
    record.set_body(AnyValue::String("hello prometheus".into()));
    logger.emit(record);
    lp.force_flush().expect("flush logs");
    lp.shutdown().expect("shutdown");
}

/// Metric names a PromQL expression uses (Skein's and the OTel/Tempo ones).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &expr[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (rest.starts_with("skein_") || rest.starts_with("traces_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..len].to_string());
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

fn exposed(scrape: &str, name: &str) -> bool {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
}

fn dashboard_queries(file: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/grafana/dashboards")
        .join(file);
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard"))
        .expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        if panel["datasource"]["type"] != "prometheus" {
            continue;
        }
        for t in panel["targets"].as_array().expect("targets") {
            let expr = t["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "30s")
                .replace("$__interval", "15s")
                .replace("$service", ".+");
            out.push((
                panel["title"].as_str().unwrap_or_default().to_string(),
                expr,
            ));
        }
    }
    out
}

#[test]
fn dashboard_queries_return_data_from_a_real_prometheus() {
    let collector = Collector::start_fast(&[]);
    send_telemetry(&collector);
    let api = collector.api();
    // make the query metrics exist: a good and a failing request
    api.wait_logs(&[("service", "prom-e2e")], 1);
    let _ = api.get("/loki/api/v1/query", &[("query", "vector(1)+vector(1)")]);
    let _ = api.get("/api/traces", &[]);
    let scrape = api.metrics();

    let target = collector
        .http_base()
        .trim_start_matches("http://")
        .to_string();
    let prom = Prometheus::start(&target, std::time::Duration::from_secs(1));

    let mut checked = Vec::new();
    let mut skipped = Vec::new();
    for file in ["skein-overview.json", "liveness.json"] {
        for (title, expr) in dashboard_queries(file) {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{file} {title}: no metric in {expr}");
            let missing: Vec<&String> = names.iter().filter(|n| !exposed(&scrape, n)).collect();
            if !missing.is_empty() {
                skipped.push(format!("{file} / {title}: {missing:?} not emitted yet"));
                continue;
            }
            let ok = poll_until(Duration::from_secs(60), || {
                // keep the query metrics moving so rates are non-empty
                let _ = api.get("/api/services", &[]);
                !prom.query(&expr).is_empty()
            });
            assert!(ok, "{file} / {title}: `{expr}` returned no data");
            checked.push(format!("{file} / {title}"));
        }
    }
    eprintln!("checked {} queries; skipped: {skipped:#?}", checked.len());
    assert!(
        checked.len() >= 12,
        "too few dashboard queries checked: {checked:?}"
    );
}
