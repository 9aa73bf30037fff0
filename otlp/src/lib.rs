//! The OTLP receive path shared by `skein-collector` and `skein-agent`.
//!
//! Owns what both must answer identically: per-item validation
//! ([`validate`]), OTLP/HTTP decoding and status codes ([`http`]), the
//! OTLP/gRPC services and code mapping ([`grpc`], served by [`grpc_raw`]
//! so the request's wire bytes reach the sink), and the error kinds
//! ([`IngestError`]), and the fast path for clean protobuf requests
//! ([`scan`], [`export_protobuf`]). What happens to a validated request — the collector's
//! write-ahead log, the agent's disk buffer — is behind the [`ExportSink`]
//! trait. This crate must not touch storage, files or tantivy.

pub mod grpc;
pub mod grpc_raw;
pub mod http;
pub mod net;
pub mod scan;
pub mod shutdown;
pub mod validate;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

pub use scan::Scanned;
pub use validate::{Limits, Rejections};

/// Which OTLP signal a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    pub fn as_label(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    /// The item noun for messages ("span", "log record").
    pub fn item(self) -> &'static str {
        match self {
            Signal::Traces => "span",
            Signal::Logs => "log record",
        }
    }
}

/// Why a request as a whole was not accepted. Each maps to one HTTP status and
/// one gRPC code in the transport modules.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body could not be decoded (400 / INVALID_ARGUMENT).
    #[error("{0}")]
    BadRequest(String),
    /// Unsupported `Content-Type` (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Body larger than `--max-request-bytes`, before or after inflation (413 / RESOURCE_EXHAUSTED).
    #[error("{0}")]
    TooLarge(String),
    /// Bearer token missing (401 / UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// Bearer token wrong (403 / PERMISSION_DENIED).
    #[error("{0}")]
    Forbidden(String),
    /// Retryable: backlog over its limit, disk or buffer full, or shutting down (503 / UNAVAILABLE + retry hint).
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    /// Our fault: an I/O error storing the data (500 / INTERNAL).
    #[error("{0}")]
    Internal(String),
}

impl IngestError {
    /// The `result` label of a finished request.
    pub fn outcome(result: &Result<Accepted, IngestError>) -> &'static str {
        match result {
            Ok(a) if a.rejected > 0 => "partial",
            Ok(_) => "ok",
            Err(IngestError::BadRequest(_)) => "bad_request",
            Err(IngestError::UnsupportedMediaType(_)) => "unsupported_media_type",
            Err(IngestError::TooLarge(_)) => "too_large",
            Err(IngestError::Unauthenticated(_)) => "unauthenticated",
            Err(IngestError::Forbidden(_)) => "forbidden",
            Err(IngestError::Unavailable { .. }) => "unavailable",
            Err(IngestError::Internal(_)) => "internal",
        }
    }
}

/// What the transports tell the client after a successful export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    pub rejected: i64,
    /// Empty when nothing was rejected.
    pub error_message: String,
}

/// Where decoded requests go: the collector's ingestor (validate → WAL) or
/// the agent's (validate → enrich → disk buffer). Implementations validate
/// with [`validate`] so that both answer alike.
pub trait ExportSink: Clone + Send + Sync + 'static {
    /// Validate and store a trace export. `raw` is the request's protobuf
    /// encoding when the transport has it (gRPC, HTTP protobuf).
    fn export_traces(
        &self,
        req: ExportTraceServiceRequest,
        raw: Option<Bytes>,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;

    /// Validate and store a log export.
    fn export_logs(
        &self,
        req: ExportLogsServiceRequest,
        raw: Option<Bytes>,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;

    /// The limits to scan requests with, when this sink can store a clean
    /// request from its bytes alone ([`ExportSink::export_scanned`]). The
    /// default, `None`, means the sink needs every request decoded.
    fn scan_limits(&self) -> Option<Limits> {
        None
    }

    /// Store a request that [`scan`] found well-formed with every item
    /// valid: `raw` is its protobuf encoding. Called only when
    /// [`ExportSink::scan_limits`] is `Some`.
    fn export_scanned(
        &self,
        signal: Signal,
        raw: Bytes,
        scanned: Scanned,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        let _ = (signal, raw, scanned);
        async {
            Err(IngestError::Internal(
                "this sink takes decoded requests only".into(),
            ))
        }
    }

    /// Observe a finished request (metrics).
    fn observe(
        &self,
        signal: Signal,
        transport: &str,
        started: Instant,
        result: &Result<Accepted, IngestError>,
    );

    /// Count request body bytes as received (before inflation).
    fn count_request_bytes(&self, signal: Signal, transport: &str, bytes: usize);
}

/// Export a protobuf-encoded request through `sink`: from its bytes alone
/// when the sink allows it and [`scan`] finds it clean, else decoded (an
/// undecodable body is a [`IngestError::BadRequest`] naming the message)
/// and validated item by item.
pub async fn export_protobuf<S: ExportSink>(
    sink: &S,
    signal: Signal,
    raw: Bytes,
) -> Result<Accepted, IngestError> {
    if let Some(limits) = sink.scan_limits() {
        let scanned = match signal {
            Signal::Traces => scan::traces(&raw, limits),
            Signal::Logs => scan::logs(&raw, limits),
        };
        if let Some(scanned) = scanned {
            return sink.export_scanned(signal, raw, scanned).await;
        }
    }
    let what = match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
    };
    let bad =
        |e: prost::DecodeError| IngestError::BadRequest(format!("invalid protobuf {what}: {e}"));
    match signal {
        Signal::Traces => {
            let req = ExportTraceServiceRequest::decode(&raw[..]).map_err(bad)?;
            sink.export_traces(req, Some(raw)).await
        }
        Signal::Logs => {
            let req = ExportLogsServiceRequest::decode(&raw[..]).map_err(bad)?;
            sink.export_logs(req, Some(raw)).await
        }
    }
}
