//! OTLP receivers for local apps (gRPC and HTTP, traces and logs).
//!
//! The transports are `skein-otlp`'s — the collector's own — so apps get the
//! same decoding, validation and error answers from the agent as from the
//! collector. [`AgentSink`] is what they feed: validate per item → add the
//! agent's resource attributes → append to the disk buffer (fsynced) →
//! acknowledge. A full buffer is a 503/UNAVAILABLE with a retry hint, never
//! a silent drop. Must not talk to the collector (that is `export/`).

pub mod enrich;
pub mod metrics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use skein_otlp::validate::{validate_logs, validate_traces};
use skein_otlp::{Accepted, ExportSink, IngestError, Limits, Rejections, Signal};

use crate::buffer::{Buffer, BufferError, Kind};
pub use enrich::Enricher;
pub use metrics::ReceiveMetrics;

/// How long apps are told to wait when the buffer is full.
pub const FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Validate → enrich → disk buffer.
#[derive(Clone)]
pub struct AgentSink {
    buffer: Buffer,
    limits: Limits,
    enricher: Arc<Enricher>,
    metrics: ReceiveMetrics,
}

impl AgentSink {
    pub fn new(
        buffer: Buffer,
        limits: Limits,
        enricher: Arc<Enricher>,
        metrics: ReceiveMetrics,
    ) -> Self {
        AgentSink {
            buffer,
            limits,
            enricher,
            metrics,
        }
    }

    async fn store(
        &self,
        signal: Signal,
        kind: Kind,
        received: usize,
        rejections: Rejections,
        payload: impl FnOnce() -> Vec<u8>,
    ) -> Result<Accepted, IngestError> {
        let label = signal.as_label();
        self.metrics
            .received
            .with_label_values(&[label])
            .inc_by(received as u64);
        for (reason, n) in &rejections.by_reason {
            self.metrics
                .rejected
                .with_label_values(&[label, reason.as_label()])
                .inc_by(*n);
        }
        if rejections.accepted > 0 {
            let items = u32::try_from(rejections.accepted).unwrap_or(u32::MAX);
            if let Err(e) = self.buffer.append(kind, items, payload()).await {
                let (reason, err) = buffer_error(e);
                self.metrics
                    .rejected
                    .with_label_values(&[label, reason])
                    .inc_by(rejections.accepted);
                return Err(err);
            }
            self.metrics
                .accepted
                .with_label_values(&[label])
                .inc_by(rejections.accepted);
        }
        Ok(Accepted {
            rejected: rejections.rejected() as i64,
            error_message: rejections.message(signal.item()),
        })
    }
}

/// Map a buffer failure to a metric reason and the app-facing error.
pub fn buffer_error(e: BufferError) -> (&'static str, IngestError) {
    match e {
        BufferError::Full { .. } => (
            "buffer_full",
            IngestError::Unavailable {
                message: format!("{e}; retry later"),
                retry_after: FULL_RETRY_AFTER,
            },
        ),
        BufferError::TooLarge { .. } => ("too_large", IngestError::TooLarge(e.to_string())),
        BufferError::Closed => (
            "shutting_down",
            IngestError::Unavailable {
                message: "the agent is shutting down; retry later".into(),
                retry_after: FULL_RETRY_AFTER,
            },
        ),
        BufferError::Io { .. } => {
            tracing::error!("disk buffer append failed: {e}");
            (
                "buffer_error",
                IngestError::Internal(format!("agent disk buffer error: {e}")),
            )
        }
    }
}

impl ExportSink for AgentSink {
    async fn export_traces(
        &self,
        mut req: ExportTraceServiceRequest,
        _raw: Option<bytes::Bytes>,
    ) -> Result<Accepted, IngestError> {
        let received = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let rejections = validate_traces(&mut req, self.limits);
        self.enricher.traces(&mut req);
        self.store(Signal::Traces, Kind::Traces, received, rejections, || {
            req.encode_to_vec()
        })
        .await
    }

    async fn export_logs(
        &self,
        mut req: ExportLogsServiceRequest,
        _raw: Option<bytes::Bytes>,
    ) -> Result<Accepted, IngestError> {
        let received = req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        let rejections = validate_logs(&mut req, self.limits);
        self.enricher.logs(&mut req);
        self.store(Signal::Logs, Kind::Logs, received, rejections, || {
            req.encode_to_vec()
        })
        .await
    }

    fn observe(
        &self,
        signal: Signal,
        transport: &str,
        started: Instant,
        result: &Result<Accepted, IngestError>,
    ) {
        let label = signal.as_label();
        self.metrics
            .requests
            .with_label_values(&[label, transport, IngestError::outcome(result)])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[label, transport])
            .observe(started.elapsed().as_secs_f64());
    }

    fn count_request_bytes(&self, signal: Signal, transport: &str, bytes: usize) {
        self.metrics
            .request_bytes
            .with_label_values(&[signal.as_label(), transport])
            .inc_by(bytes as u64);
    }
}
