//! The Rust OpenTelemetry SDK (`opentelemetry-otlp`) sends a 3-service call
//! chain and logs over OTLP/gRPC and OTLP/HTTP protobuf; everything comes
//! back through the Jaeger and logs APIs (see `skein_e2e::chain`).

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
use skein_e2e::chain::{self, SentChain};
use skein_e2e::Collector;

#[derive(Clone, Copy)]
enum Transport {
    Grpc,
    Http,
}

/// Exporters for one transport. gRPC exporters are built inside `rt` (tonic
/// needs a runtime); the HTTP ones use the blocking reqwest client.
struct Exporters<'a> {
    transport: Transport,
    collector: &'a Collector,
    rt: &'a tokio::runtime::Runtime,
}

impl Exporters<'_> {
    fn spans(&self) -> SpanExporter {
        match self.transport {
            Transport::Grpc => self.rt.block_on(async {
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(self.collector.grpc_endpoint())
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .expect("gRPC span exporter")
            }),
            Transport::Http => SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", self.collector.otlp_http_base()))
                .with_timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP span exporter"),
        }
    }

    fn logs(&self) -> LogExporter {
        match self.transport {
            Transport::Grpc => self.rt.block_on(async {
                LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(self.collector.grpc_endpoint())
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .expect("gRPC log exporter")
            }),
            Transport::Http => LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/logs", self.collector.otlp_http_base()))
                .with_timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP log exporter"),
        }
    }
}

fn resource(service: &'static str) -> Resource {
    Resource::builder().with_service_name(service).build()
}

/// Send the chain with one `SdkTracerProvider` per service and the logs with
/// the Logs Bridge API; flush and shut everything down before returning.
fn send_chain(collector: &Collector, transport: Transport, marker: &str) -> SentChain {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let exporters = Exporters {
        transport,
        collector,
        rt: &rt,
    };
    let providers: Vec<SdkTracerProvider> = chain::SERVICES
        .iter()
        .map(|s| {
            SdkTracerProvider::builder()
                .with_resource(resource(s))
                .with_batch_exporter(exporters.spans())
                .build()
        })
        .collect();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource("inventory"))
        .with_batch_exporter(exporters.logs())
        .build();
    let logger = logger_provider.logger("skein-e2e-rust");
    let tracers: Vec<_> = providers
        .iter()
        .map(|p| p.tracer("skein-e2e-rust"))
        .collect();
    let bodies = chain::log_bodies(marker);

    let root = tracers[0]
        .span_builder(chain::ROOT)
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("customer.tier", "gold"),
            KeyValue::new("http.status_code", 200i64),
            KeyValue::new("cache.hit", false),
        ])
        .start(&tracers[0]);
    let root_cx = Context::current_with_span(root);
    root_cx
        .span()
        .add_event(chain::EVENT, vec![KeyValue::new("items", 3i64)]);
    let order = tracers[1]
        .span_builder(chain::ORDER)
        .with_kind(SpanKind::Server)
        .start_with_context(&tracers[1], &root_cx);
    let order_cx = root_cx.with_span(order);
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
    inventory.set_status(Status::error("out of stock"));
    inventory.end();
    order_cx.span().end();
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
    logger_provider
        .force_flush()
        .expect("flushing logs (export failed?)");
    logger_provider
        .shutdown()
        .expect("logger provider shutdown");
    sent
}

#[test]
fn rust_sdk_over_grpc() {
    let collector = Collector::start_fast(&[]);
    let sent = send_chain(&collector, Transport::Grpc, &chain::marker());
    chain::verify(&collector.api(), &sent);
}

#[test]
fn rust_sdk_over_http_protobuf() {
    let collector = Collector::start_fast(&[]);
    let sent = send_chain(&collector, Transport::Http, &chain::marker());
    chain::verify(&collector.api(), &sent);
}
