//! Helpers for the call-chain tests (`tests/tests/e2e/chains_*.rs`): one Rust
//! OpenTelemetry SDK tracer provider per service exporting OTLP/HTTP
//! protobuf, explicit span timestamps (to fake a skewed clock), and polling
//! the native trace API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;

use crate::{Api, Collector, QUERYABLE_WITHIN};

/// A tracer provider for `service` sending to `collector` over OTLP/HTTP.
pub fn provider(collector: &Collector, service: &'static str) -> SdkTracerProvider {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", collector.otlp_http_base()))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP span exporter");
    SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(exporter)
        .build()
}

/// Flush and shut down providers (panics when an export failed).
pub fn flush(providers: &[SdkTracerProvider]) {
    for p in providers {
        p.force_flush().expect("flushing spans (export failed?)");
        p.shutdown().expect("tracer provider shutdown");
    }
}

/// A base instant on a whole millisecond, a minute ago (so that shifted
/// clocks stay in the past).
pub fn base_time() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let ms = now.as_millis() as u64 - 60_000;
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `base + ms` (ms may be negative).
pub fn at(base: SystemTime, ms: i64) -> SystemTime {
    if ms >= 0 {
        base + Duration::from_millis(ms as u64)
    } else {
        base - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Unix ns of `base + ms`.
pub fn ns(base: SystemTime, ms: i64) -> u64 {
    at(base, ms)
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// Poll `GET /api/v1/traces/{id}` (with `query`) until it reports at least
/// `spans` received spans; the answer.
pub fn wait_native_trace(api: &Api, trace_id: &str, spans: u64, query: &[(&str, &str)]) -> Value {
    let path = format!("/api/v1/traces/{trace_id}");
    let mut last = (0, Value::Null);
    let ok = crate::poll_until(QUERYABLE_WITHIN, || {
        last = api.get(&path, query);
        last.0 == 200 && last.1["span_count"].as_u64().unwrap_or(0) >= spans
    });
    assert!(
        ok,
        "trace {trace_id} did not reach {spans} spans within {QUERYABLE_WITHIN:?}: {} {}",
        last.0, last.1
    );
    last.1
}

/// The span with `span_id` in a native trace answer.
pub fn native_span<'a>(trace: &'a Value, span_id: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["span_id"] == span_id))
        .unwrap_or_else(|| panic!("no span {span_id} in {trace}"))
}
