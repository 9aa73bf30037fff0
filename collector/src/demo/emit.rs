//! Turns [`TracePlan`]s into real OpenTelemetry data: one SDK tracer
//! provider and one logger provider per demo service (each with its own
//! `Resource`), exporting over OTLP/gRPC to that service's agent.
//!
//! Spans are built with explicit start and end times (the plan's offsets
//! plus the service's clock skew) and with their parent's context, so trace
//! ids and parent ids propagate across the four services as they would over
//! HTTP headers. Logs carry the trace and span id of the span they were
//! written in. Owns the SDK providers; must not touch the agents or the
//! collector's internals.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use super::topology::Service;
use super::traffic::{Attr, Kind, Level, TracePlan};
use super::DemoError;

/// Spans (and log records) each service's SDK queues before it drops.
const SDK_QUEUE: usize = 4096;
/// How often the SDK batches are exported.
const SDK_EXPORT_EVERY: Duration = Duration::from_millis(500);
/// Time limit of one SDK export to an agent.
const SDK_EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

struct Instrumented {
    tracer: SdkTracer,
    logger: SdkLogger,
    traces: SdkTracerProvider,
    logs: SdkLoggerProvider,
}

/// The four services' OpenTelemetry SDKs.
pub struct Emitter {
    services: BTreeMap<Service, Instrumented>,
}

fn resource(service: Service) -> Resource {
    Resource::builder_empty()
        .with_service_name(service.name())
        .with_attributes([
            KeyValue::new("service.instance.id", service.instance()),
            KeyValue::new("service.version", service.version()),
            KeyValue::new("service.namespace", "skein-demo"),
            KeyValue::new("deployment.environment.name", "demo"),
            KeyValue::new("host.name", format!("demo-{}", service.name())),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        ])
        .build()
}

impl Emitter {
    /// SDKs exporting to `endpoints` (an agent's `http://host:port` OTLP/gRPC
    /// per service). Must run inside the tokio runtime (tonic's channels).
    pub fn new(endpoints: &BTreeMap<Service, String>) -> Result<Self, DemoError> {
        let mut services = BTreeMap::new();
        for (&service, endpoint) in endpoints {
            let sdk = |e: opentelemetry_otlp::ExporterBuildError| DemoError::Sdk(e.to_string());
            let spans = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(SDK_EXPORT_TIMEOUT)
                .build()
                .map_err(sdk)?;
            let logs = LogExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(SDK_EXPORT_TIMEOUT)
                .build()
                .map_err(sdk)?;
            let traces = SdkTracerProvider::builder()
                .with_resource(resource(service))
                .with_span_processor(
                    BatchSpanProcessor::builder(spans)
                        .with_batch_config(
                            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                                .with_max_queue_size(SDK_QUEUE)
                                .with_scheduled_delay(SDK_EXPORT_EVERY)
                                .build(),
                        )
                        .build(),
                )
                .build();
            let logs = SdkLoggerProvider::builder()
                .with_resource(resource(service))
                .with_log_processor(
                    BatchLogProcessor::builder(logs)
                        .with_batch_config(
                            opentelemetry_sdk::logs::BatchConfigBuilder::default()
                                .with_max_queue_size(SDK_QUEUE)
                                .with_scheduled_delay(SDK_EXPORT_EVERY)
                                .build(),
                        )
                        .build(),
                )
                .build();
            services.insert(
                service,
                Instrumented {
                    tracer: traces.tracer("skein-demo"),
                    logger: logs.logger("skein-demo"),
                    traces,
                    logs,
                },
            );
        }
        Ok(Emitter { services })
    }

    /// Record one request that ended at `end` (the wall clock).
    pub fn emit(&self, plan: &TracePlan, end: SystemTime) {
        let base = end
            .checked_sub(Duration::from_micros(plan.duration_us()))
            .unwrap_or(end);
        let sdks: Option<Vec<&Instrumented>> = plan
            .spans
            .iter()
            .map(|s| self.services.get(&s.service))
            .collect();
        // A service without an SDK would leave its children dangling.
        let Some(sdks) = sdks else { return };
        let mut contexts: Vec<Context> = Vec::with_capacity(plan.spans.len());
        for (s, sdk) in plan.spans.iter().zip(sdks) {
            let skew = s.service.clock_skew_ms();
            let parent = match s.parent.and_then(|i| contexts.get(i)) {
                Some(cx) => cx.clone(),
                None => Context::new(),
            };
            let span = sdk
                .tracer
                .span_builder(s.name.clone())
                .with_kind(match s.kind {
                    Kind::Server => SpanKind::Server,
                    Kind::Client => SpanKind::Client,
                    Kind::Internal => SpanKind::Internal,
                })
                .with_start_time(at(base, s.start_us, skew))
                .with_attributes(s.attributes.iter().map(kv))
                .start_with_context(&sdk.tracer, &parent);
            let cx = parent.with_span(span);
            if let Some(message) = &s.error {
                cx.span().set_status(Status::error(message.clone()));
            }
            contexts.push(cx);
        }
        for l in &plan.logs {
            let (Some(span), Some(cx)) = (plan.spans.get(l.span), contexts.get(l.span)) else {
                continue;
            };
            let Some(sdk) = self.services.get(&span.service) else {
                continue;
            };
            let sc = cx.span().span_context().clone();
            let mut record = sdk.logger.create_log_record();
            record.set_timestamp(at(base, l.at_us, span.service.clock_skew_ms()));
            record.set_observed_timestamp(SystemTime::now());
            let (number, text) = match l.level {
                Level::Info => (Severity::Info, "INFO"),
                Level::Warn => (Severity::Warn, "WARN"),
                Level::Error => (Severity::Error, "ERROR"),
            };
            record.set_severity_number(number);
            record.set_severity_text(text);
            record.set_body(AnyValue::String(l.body.clone().into()));
            for (k, v) in &l.attributes {
                match v {
                    Attr::Str(s) => record.add_attribute(*k, s.clone()),
                    Attr::Int(n) => record.add_attribute(*k, *n),
                }
            }
            record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
            sdk.logger.emit(record);
        }
        for (s, cx) in plan.spans.iter().zip(&contexts) {
            cx.span()
                .end_with_timestamp(at(base, s.end_us, s.service.clock_skew_ms()));
        }
    }

    /// Flush and stop every SDK (blocking: call from a blocking thread).
    pub fn shutdown(self) {
        for (service, sdk) in self.services {
            if let Err(e) = sdk.traces.shutdown_with_timeout(Duration::from_secs(2)) {
                tracing::debug!(service = service.name(), "demo tracer shutdown: {e}");
            }
            if let Err(e) = sdk.logs.shutdown_with_timeout(Duration::from_secs(2)) {
                tracing::debug!(service = service.name(), "demo logger shutdown: {e}");
            }
        }
    }
}

fn kv((key, value): &(&'static str, Attr)) -> KeyValue {
    match value {
        Attr::Str(s) => KeyValue::new(*key, s.clone()),
        Attr::Int(n) => KeyValue::new(*key, *n),
    }
}

/// `base + offset_us`, shifted by a clock skew in milliseconds.
pub fn at(base: SystemTime, offset_us: u64, skew_ms: i64) -> SystemTime {
    let t = base + Duration::from_micros(offset_us);
    let skew = Duration::from_millis(skew_ms.unsigned_abs());
    if skew_ms >= 0 {
        t + skew
    } else {
        t.checked_sub(skew).unwrap_or(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_shifts_both_ways() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(at(base, 1_500, 0), base + Duration::from_micros(1_500));
        assert_eq!(at(base, 0, -2_500), base - Duration::from_millis(2_500));
        assert_eq!(at(base, 0, 40), base + Duration::from_millis(40));
    }

    #[test]
    fn resources_name_service_and_instance() {
        let r = resource(Service::Payment);
        let get = |k: &'static str| r.get(&opentelemetry::Key::new(k)).map(|v| v.to_string());
        assert_eq!(get("service.name").as_deref(), Some("payment"));
        assert_eq!(
            get("service.instance.id").as_deref(),
            Some(Service::Payment.instance())
        );
    }
}
