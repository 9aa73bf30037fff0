//! Helpers for the web UI browser tests (`tests/tests/e2e/ui_pages.rs`): send
//! the SDK call chain over OTLP/HTTP, send a 10,000-span trace for the render
//! benchmark, probe which optional APIs the collector serves, and run the
//! Node/Playwright script in `tests/ui/` against Debian's Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use crate::chain::{self, SentChain};
use crate::{otlp, Collector};

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

fn resource(service: &'static str) -> Resource {
    Resource::builder().with_service_name(service).build()
}

/// Send the 3-service chain (see [`chain`]) and its two logs with the Rust
/// OpenTelemetry SDK over OTLP/HTTP protobuf; flushed before returning.
pub fn send_chain_sdk(collector: &Collector, marker: &str) -> SentChain {
    let spans = || {
        SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", collector.otlp_http_base()))
            .with_timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP span exporter")
    };
    let providers: Vec<SdkTracerProvider> = chain::SERVICES
        .iter()
        .map(|s| {
            SdkTracerProvider::builder()
                .with_resource(resource(s))
                .with_simple_exporter(spans())
                .build()
        })
        .collect();
    let log_exporter = LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/logs", collector.otlp_http_base()))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP log exporter");
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource("inventory"))
        .with_simple_exporter(log_exporter)
        .build();
    let logger = logger_provider.logger("skein-ui-test");
    let tracers: Vec<_> = providers
        .iter()
        .map(|p| p.tracer("skein-ui-test"))
        .collect();
    let bodies = chain::log_bodies(marker);

    let root = tracers[0]
        .span_builder(chain::ROOT)
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("customer.tier", "gold"),
            KeyValue::new("http.status_code", 200i64),
        ])
        .start(&tracers[0]);
    let root_cx = Context::current_with_span(root);
    root_cx
        .span()
        .add_event(chain::EVENT, vec![KeyValue::new("items", 3i64)]);
    std::thread::sleep(Duration::from_millis(2)); // visible offsets in the waterfall
    let order = tracers[1]
        .span_builder(chain::ORDER)
        .with_kind(SpanKind::Server)
        .start_with_context(&tracers[1], &root_cx);
    let order_cx = root_cx.with_span(order);
    std::thread::sleep(Duration::from_millis(2));
    let mut inventory = tracers[2]
        .span_builder(chain::INVENTORY)
        .with_kind(SpanKind::Server)
        .start_with_context(&tracers[2], &order_cx);
    let inv = inventory.span_context().clone();
    for (body, severity, text) in [
        (&bodies[0], Severity::Error, "ERROR"),
        (&bodies[1], Severity::Warn, "WARN"),
    ] {
        let mut record = logger.create_log_record();
        record.set_timestamp(SystemTime::now());
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_body(AnyValue::String(body.clone().into()));
        record.add_attribute("sku", "A-1");
        record.set_trace_context(inv.trace_id(), inv.span_id(), Some(inv.trace_flags()));
        logger.emit(record);
    }
    std::thread::sleep(Duration::from_millis(3));
    inventory.set_status(Status::error("out of stock"));
    inventory.end();
    std::thread::sleep(Duration::from_millis(1));
    order_cx.span().end();
    std::thread::sleep(Duration::from_millis(1));
    root_cx.span().end();

    let sent = SentChain {
        trace_id: inv.trace_id().to_string(),
        root: root_cx.span().span_context().span_id().to_string(),
        order: order_cx.span().span_context().span_id().to_string(),
        inventory: inv.span_id().to_string(),
        log_bodies: bodies,
    };
    for p in &providers {
        p.force_flush().expect("flushing spans (export failed?)");
        p.shutdown().expect("tracer provider shutdown");
    }
    logger_provider.force_flush().expect("flushing logs");
    logger_provider
        .shutdown()
        .expect("logger provider shutdown");
    sent
}

/// Send one trace of `n` spans over OTLP/HTTP (an 8-ary tree over five
/// services, children inside their parents' time); returns its id.
pub fn send_big_trace(collector: &Collector, n: usize) -> String {
    const SERVICES: [&str; 5] = ["gateway", "auth", "catalog", "pricing", "storage"];
    let trace_id = otlp::new_trace_id();
    let ids: Vec<Vec<u8>> = (0..n).map(|_| otlp::new_span_id()).collect();
    let t0 = otlp::now_ns() - 60_000_000_000;
    // Each span's window: the root lasts 5 s; children split the parent's.
    let mut window = vec![(0u64, 0u64); n];
    window[0] = (t0, t0 + 5_000_000_000);
    let mut per_service: Vec<Vec<opentelemetry_proto::tonic::trace::v1::Span>> =
        vec![Vec::new(); SERVICES.len()];
    for i in 0..n {
        if i > 0 {
            let p = (i - 1) / 8;
            let (ps, pe) = window[p];
            let slot = ((i - 1) % 8) as u64;
            let len = (pe - ps) / 9;
            let s = ps + len / 2 + slot * len;
            window[i] = (s, s + len * 4 / 5);
        }
        let mut span = otlp::span(&trace_id, &ids[i], &format!("op-{}", i % 37));
        span.start_time_unix_nano = window[i].0;
        span.end_time_unix_nano = window[i].1.max(window[i].0 + 1);
        if i > 0 {
            span.parent_span_id = ids[(i - 1) / 8].clone();
        }
        span.attributes.push(otlp::int_attr("span.index", i as i64));
        per_service[i % SERVICES.len()].push(span);
    }
    for (svc, spans) in SERVICES.iter().zip(per_service) {
        for chunk in spans.chunks(1000) {
            let reply = otlp::post_traces(
                &collector.otlp_http_base(),
                &otlp::traces(svc, chunk.to_vec()),
            );
            assert_eq!(reply.status, 200, "big trace export: {}", reply.text());
        }
    }
    otlp::hex(&trace_id)
}

/// Whether the collector serves `path` (an unknown `/api` path answers 404
/// "no such endpoint"; a served one anything else, e.g. 400 for missing
/// parameters).
pub fn serves(base: &str, path: &str) -> bool {
    let client = crate::http_client()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    match client.get(format!("{base}{path}")).send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            !(status == 404 && body.contains("no such endpoint"))
        }
        Err(e) => panic!("probing {path}: {e}"),
    }
}

/// `tests/ui/` (the Node package with the Playwright script).
pub fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// Run `node tests/ui/ui.test.mjs` with `env`; returns (success, output).
pub fn run_script(env: &[(&str, String)]) -> (bool, String) {
    let dir = script_dir();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("ui.test.mjs")).current_dir(&dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running node (install Node.js): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `target/ui-screenshots/` of this build.
pub fn screenshot_dir() -> PathBuf {
    crate::target_dirs().0.join("ui-screenshots")
}

/// Wait (up to 2 min: a 10k-span Jaeger answer is slow on a loaded machine)
/// until trace `trace_id` returns at least `spans` spans.
pub fn wait_big_trace(base: &str, trace_id: &str, spans: usize) {
    let client = crate::http_client()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("http client");
    let url = format!("{base}/api/traces/{trace_id}");
    let mut last = String::new();
    let ok = crate::poll_until(Duration::from_secs(120), || {
        let Ok(resp) = client.get(&url).send() else {
            return false;
        };
        let body: serde_json::Value = resp.json().unwrap_or_default();
        let n = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
        last = format!("{n} spans");
        n >= spans
    });
    assert!(
        ok,
        "trace {trace_id} did not reach {spans} spans: last {last}"
    );
}
