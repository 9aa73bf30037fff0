//! A small call graph sent with the real Rust OpenTelemetry SDK, one
//! `SdkTracerProvider` (and so one OTLP exporter and one resource) per
//! service, for the dependency-graph and span-metrics tests:
//!
//! ```text
//! web (SERVER "GET /shop") ─CLIENT "POST /checkout"─▶ checkout (SERVER "POST /checkout")
//!     checkout ─CLIENT "charge"─▶ payments (SERVER "charge", error on every `fail_every`-th call)
//! ```
//!
//! Services export separately, so caller and callee spans of one call
//! reach the collector in different requests.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use crate::Collector;

pub const SERVICES: [&str; 3] = ["web", "checkout", "payments"];

/// What was sent: calls and failed calls per (caller, callee), and spans per
/// service.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sent {
    pub calls: BTreeMap<(String, String), u64>,
    pub failed: BTreeMap<(String, String), u64>,
    pub spans: BTreeMap<String, u64>,
}

/// Send `rounds` traces over OTLP/gRPC; every `fail_every`-th payment fails
/// (0 = never). Flushes and shuts the providers down before returning.
pub fn send_calls(collector: &Collector, rounds: u64, fail_every: u64) -> Sent {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let providers: Vec<SdkTracerProvider> = SERVICES
        .iter()
        .map(|s| {
            let exporter = rt.block_on(async {
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(collector.grpc_endpoint())
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .expect("gRPC span exporter")
            });
            SdkTracerProvider::builder()
                .with_resource(Resource::builder().with_service_name(*s).build())
                .with_batch_exporter(exporter)
                .build()
        })
        .collect();
    let t: Vec<_> = providers
        .iter()
        .map(|p| p.tracer("skein-e2e-calls"))
        .collect();
    let mut sent = Sent::default();
    for round in 1..=rounds {
        let fail = fail_every > 0 && round % fail_every == 0;
        let root = t[0]
            .span_builder("GET /shop")
            .with_kind(SpanKind::Server)
            .start(&t[0]);
        let root_cx = Context::current_with_span(root);
        let call = t[0]
            .span_builder("POST /checkout")
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("server.address", "checkout.internal")])
            .start_with_context(&t[0], &root_cx);
        let call_cx = root_cx.with_span(call);
        let serve = t[1]
            .span_builder("POST /checkout")
            .with_kind(SpanKind::Server)
            .start_with_context(&t[1], &call_cx);
        let serve_cx = call_cx.with_span(serve);
        let charge = t[1]
            .span_builder("charge")
            .with_kind(SpanKind::Client)
            .start_with_context(&t[1], &serve_cx);
        let charge_cx = serve_cx.with_span(charge);
        let mut pay = t[2]
            .span_builder("charge")
            .with_kind(SpanKind::Server)
            .start_with_context(&t[2], &charge_cx);
        if fail {
            pay.set_status(Status::error("card declined"));
        }
        pay.end();
        charge_cx.span().end();
        serve_cx.span().end();
        call_cx.span().end();
        root_cx.span().end();
        count(&mut sent.calls, "web", "checkout");
        count(&mut sent.calls, "checkout", "payments");
        if fail {
            count(&mut sent.failed, "checkout", "payments");
        }
        for (service, n) in [("web", 2), ("checkout", 2), ("payments", 1)] {
            *sent.spans.entry(service.to_string()).or_default() += n;
        }
    }
    for p in &providers {
        p.force_flush().expect("flushing spans (export failed?)");
        p.shutdown().expect("tracer provider shutdown");
    }
    sent
}

fn count(m: &mut BTreeMap<(String, String), u64>, a: &str, b: &str) {
    *m.entry((a.to_string(), b.to_string())).or_default() += 1;
}

/// The value of the sample `name{labels}` in Prometheus text, where
/// `labels` is the exact label text between the braces.
pub fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}
