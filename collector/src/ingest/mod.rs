//! OTLP ingest: the front door of the collector.
//!
//! Owns the OTLP/gRPC and OTLP/HTTP receivers and the [`Ingestor`] they share:
//! decode → validate per item (drop bad items, keep neighbours) → append the
//! cleaned request to the write-ahead log → answer only once the WAL says the
//! record is fsynced. A protobuf request that `skein_otlp::scan` finds clean
//! skips the decode and goes to the WAL as received. It must not touch the index or any query path; it knows
//! the WAL only through [`crate::wal::Wal::append`].

pub mod grpc;
pub mod http;
pub mod metrics;
pub mod traffic;
pub mod validate;

#[cfg(test)]
mod fuzz;

use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::wal::{RecordKind, Wal, WalError};
pub use metrics::IngestMetrics;
pub use traffic::TrafficObserver;
pub use validate::{Limits, Rejections};

pub use skein_otlp::{Accepted, IngestError, Scanned, Signal};

/// Shared by both transports: validates, makes durable, counts.
#[derive(Clone)]
pub struct Ingestor {
    wal: Wal,
    limits: Limits,
    metrics: IngestMetrics,
    /// Told which `service.instance.id`s each accepted export carried.
    traffic: Option<std::sync::Arc<dyn TrafficObserver>>,
}

impl Ingestor {
    pub fn new(wal: Wal, limits: Limits, metrics: IngestMetrics) -> Self {
        Ingestor {
            wal,
            limits,
            metrics,
            traffic: None,
        }
    }

    /// Report the instance ids of accepted exports to `observer` (the
    /// registry's data-plane cross-check).
    pub fn with_traffic_observer(mut self, observer: std::sync::Arc<dyn TrafficObserver>) -> Self {
        self.traffic = Some(observer);
        self
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn max_attribute_bytes(&self) -> usize {
        self.limits.max_attribute_bytes
    }

    /// Validate and durably store a trace export. `raw` is the request's
    /// protobuf encoding when the caller already has it: if nothing is
    /// rejected it is written as is instead of being re-encoded.
    pub async fn export_traces(
        &self,
        mut req: ExportTraceServiceRequest,
        raw: Option<Bytes>,
    ) -> Result<Accepted, IngestError> {
        let received: usize = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let rejections = validate::validate_traces(&mut req, self.limits);
        let payload = payload(&req, raw, &rejections);
        let accepted = rejections.accepted;
        let result = self
            .store(
                Signal::Traces,
                RecordKind::Spans,
                received as u64,
                rejections,
                payload,
            )
            .await;
        if let (Some(obs), Ok(_), true) = (&self.traffic, &result, accepted > 0) {
            obs.seen(&traffic::trace_instance_ids(&req));
        }
        result
    }

    /// Validate and durably store a log export (see [`Ingestor::export_traces`]).
    pub async fn export_logs(
        &self,
        mut req: ExportLogsServiceRequest,
        raw: Option<Bytes>,
    ) -> Result<Accepted, IngestError> {
        let received: usize = req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        let rejections = validate::validate_logs(&mut req, self.limits);
        let payload = payload(&req, raw, &rejections);
        let accepted = rejections.accepted;
        let result = self
            .store(
                Signal::Logs,
                RecordKind::Logs,
                received as u64,
                rejections,
                payload,
            )
            .await;
        if let (Some(obs), Ok(_), true) = (&self.traffic, &result, accepted > 0) {
            obs.seen(&traffic::log_instance_ids(&req));
        }
        result
    }

    /// Durably store a request that `skein_otlp::scan` found clean (it
    /// decodes, and validation would keep every item): `raw` goes to the
    /// WAL as received.
    pub async fn export_scanned(
        &self,
        signal: Signal,
        raw: Bytes,
        scanned: Scanned,
    ) -> Result<Accepted, IngestError> {
        let kind = match signal {
            Signal::Traces => RecordKind::Spans,
            Signal::Logs => RecordKind::Logs,
        };
        let items = scanned.items;
        let result = self
            .store(signal, kind, items, Rejections::none(items), raw.clone())
            .await;
        if let (Some(obs), Ok(_), true) = (&self.traffic, &result, items > 0) {
            obs.seen(&scanned.instance_ids(&raw));
        }
        result
    }

    async fn store(
        &self,
        signal: Signal,
        kind: RecordKind,
        received: u64,
        rejections: Rejections,
        payload: Bytes,
    ) -> Result<Accepted, IngestError> {
        let label = signal.as_label();
        self.metrics
            .received
            .with_label_values(&[label])
            .inc_by(received);
        for (reason, n) in &rejections.by_reason {
            self.metrics
                .rejected
                .with_label_values(&[label, reason.as_label()])
                .inc_by(*n);
        }
        if rejections.accepted > 0 {
            if let Err(e) = self.wal.append(kind, payload).await {
                let (reason, err) = wal_error(e);
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

    /// Observe a finished request in the metrics.
    pub fn observe(
        &self,
        signal: Signal,
        transport: &str,
        started: Instant,
        result: &Result<Accepted, IngestError>,
    ) {
        let outcome = match result {
            Ok(a) if a.rejected > 0 => "partial",
            Ok(_) => "ok",
            Err(IngestError::BadRequest(_)) => "bad_request",
            Err(IngestError::UnsupportedMediaType(_)) => "unsupported_media_type",
            Err(IngestError::TooLarge(_)) => "too_large",
            Err(IngestError::Unauthenticated(_)) => "unauthenticated",
            Err(IngestError::Forbidden(_)) => "forbidden",
            Err(IngestError::Unavailable { .. }) => "unavailable",
            Err(IngestError::Internal(_)) => "internal",
        };
        let label = signal.as_label();
        self.metrics
            .requests
            .with_label_values(&[label, transport, outcome])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[label, transport])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// What goes into the WAL: the request's own bytes when nothing was rejected
/// (no copy), else the request re-encoded without the rejected items.
fn payload<M: Message>(req: &M, raw: Option<Bytes>, rejections: &Rejections) -> Bytes {
    match raw {
        Some(raw) if rejections.rejected() == 0 => raw,
        _ => Bytes::from(req.encode_to_vec()),
    }
}

/// Map a WAL failure to a metric reason and the client-facing error.
fn wal_error(e: WalError) -> (&'static str, IngestError) {
    match e {
        WalError::Backpressure { retry_after } => (
            "backpressure",
            IngestError::Unavailable {
                message: "the collector is behind on indexing (write-ahead log backlog over --max-wal-backlog); retry later".into(),
                retry_after,
            },
        ),
        WalError::DiskFull => (
            "disk_full",
            IngestError::Unavailable {
                message: "the collector's disk is full; retry later".into(),
                retry_after: Duration::from_secs(30),
            },
        ),
        WalError::Closed => (
            "shutting_down",
            IngestError::Unavailable {
                message: "the collector is shutting down; retry against it or another collector".into(),
                retry_after: Duration::from_secs(5),
            },
        ),
        other => {
            tracing::error!(error = %other, "write-ahead log append failed");
            ("wal_error", IngestError::Internal(format!("write-ahead log error: {other}")))
        }
    }
}
