//! OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/logs`.
//!
//! Content types, gzip with an inflation limit, the body size limit, status
//! codes and `Retry-After` live in `skein-otlp` (shared with the agent, so
//! both answer alike); this module binds them to the collector's
//! [`Ingestor`] through [`ExportSink`].

use std::time::Instant;

use axum::Router;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use skein_otlp::ExportSink;

use super::{Accepted, IngestError, Ingestor, Signal};

pub use skein_otlp::http::{http_status, RpcStatus};

/// The OTLP/HTTP routes. Body size is enforced inside (no other layer needed).
pub fn router(ingestor: Ingestor, max_request_bytes: usize) -> Router {
    skein_otlp::http::router(ingestor, max_request_bytes)
}

impl ExportSink for Ingestor {
    fn export_traces(
        &self,
        req: ExportTraceServiceRequest,
        raw: Option<Bytes>,
    ) -> impl std::future::Future<Output = Result<Accepted, IngestError>> + Send {
        Ingestor::export_traces(self, req, raw)
    }

    fn export_logs(
        &self,
        req: ExportLogsServiceRequest,
        raw: Option<Bytes>,
    ) -> impl std::future::Future<Output = Result<Accepted, IngestError>> + Send {
        Ingestor::export_logs(self, req, raw)
    }

    fn scan_limits(&self) -> Option<skein_otlp::Limits> {
        Some(self.limits())
    }

    fn export_scanned(
        &self,
        signal: Signal,
        raw: Bytes,
        scanned: skein_otlp::Scanned,
    ) -> impl std::future::Future<Output = Result<Accepted, IngestError>> + Send {
        Ingestor::export_scanned(self, signal, raw, scanned)
    }

    fn observe(
        &self,
        signal: Signal,
        transport: &str,
        started: Instant,
        result: &Result<Accepted, IngestError>,
    ) {
        Ingestor::observe(self, signal, transport, started, result)
    }

    fn count_request_bytes(&self, signal: Signal, transport: &str, bytes: usize) {
        self.metrics()
            .request_bytes
            .with_label_values(&[signal.as_label(), transport])
            .inc_by(bytes as u64);
    }
}
