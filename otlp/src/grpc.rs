//! OTLP/gRPC receiver: `TraceService/Export` and `LogsService/Export`.
//!
//! tonic inflates and applies the size limit (to the inflated message too)
//! and hands over the message's bytes ([`crate::grpc_raw`]);
//! [`crate::export_protobuf`] scans or decodes them; this module maps [`IngestError`]s to gRPC codes, with a `RetryInfo` detail
//! on `UNAVAILABLE` as the OTLP spec asks, and builds `partial_success`.

use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use bytes::Bytes;

use crate::grpc_raw::{RawExport, RawExportServer};
use crate::{export_protobuf, ExportSink, IngestError, Signal};

/// The gRPC services, sharing one [`ExportSink`].
#[derive(Clone)]
pub struct OtlpGrpc<S> {
    ingestor: S,
}

/// `TraceService/Export` bound to a sink.
pub struct TraceExport<S>(S);

/// `LogsService/Export` bound to a sink.
pub struct LogsExport<S>(S);

impl<S: ExportSink> OtlpGrpc<S> {
    pub fn new(ingestor: S) -> Self {
        OtlpGrpc { ingestor }
    }

    /// `TraceService` with gzip/zstd accepted and the message size limit set.
    pub fn trace_server(&self, max_request_bytes: usize) -> RawExportServer<TraceExport<S>> {
        RawExportServer::new(TraceExport(self.ingestor.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_request_bytes)
    }

    /// `LogsService`, configured like [`OtlpGrpc::trace_server`].
    pub fn logs_server(&self, max_request_bytes: usize) -> RawExportServer<LogsExport<S>> {
        RawExportServer::new(LogsExport(self.ingestor.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_request_bytes)
    }
}

impl<S: ExportSink> RawExport for TraceExport<S> {
    type Response = ExportTraceServiceResponse;
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    async fn export(&self, raw: Bytes) -> Result<ExportTraceServiceResponse, Status> {
        let started = Instant::now();
        let result = export_protobuf(&self.0, Signal::Traces, raw).await;
        self.0.observe(Signal::Traces, "grpc", started, &result);
        let a = result.map_err(to_status)?;
        Ok(ExportTraceServiceResponse {
            partial_success: (a.rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: a.rejected,
                error_message: a.error_message,
            }),
        })
    }
}

impl<S: ExportSink> RawExport for LogsExport<S> {
    type Response = ExportLogsServiceResponse;
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

    async fn export(&self, raw: Bytes) -> Result<ExportLogsServiceResponse, Status> {
        let started = Instant::now();
        let result = export_protobuf(&self.0, Signal::Logs, raw).await;
        self.0.observe(Signal::Logs, "grpc", started, &result);
        let a = result.map_err(to_status)?;
        Ok(ExportLogsServiceResponse {
            partial_success: (a.rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: a.rejected,
                error_message: a.error_message,
            }),
        })
    }
}

/// The one mapping from ingest errors to gRPC status codes.
pub fn to_status(e: IngestError) -> Status {
    match e {
        IngestError::BadRequest(m) | IngestError::UnsupportedMediaType(m) => {
            Status::invalid_argument(m)
        }
        IngestError::TooLarge(m) => Status::resource_exhausted(m),
        IngestError::Unauthenticated(m) => Status::unauthenticated(m),
        IngestError::Forbidden(m) => Status::permission_denied(m),
        IngestError::Unavailable {
            message,
            retry_after,
        } => {
            let details = ErrorDetails::with_retry_info(Some(retry_after));
            let mut status = Status::with_error_details(Code::Unavailable, message, details);
            if let Ok(v) = retry_after.as_secs().max(1).to_string().parse() {
                status.metadata_mut().insert("retry-after", v);
            }
            status
        }
        IngestError::Internal(m) => Status::internal(m),
    }
}

/// Rewrite the codes tonic's codec gives to bad requests before our handler
/// runs: an undecodable message is `INTERNAL` and an oversized one
/// `OUT_OF_RANGE` in tonic, but the OTLP contract says `INVALID_ARGUMENT` and
/// `RESOURCE_EXHAUSTED`. Such errors are trailers-only responses, so the code
/// is in the headers. Applied as a layer on the whole gRPC server.
pub fn normalize_status<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let headers = resp.headers_mut();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let fixed = match code {
        Some(13) if message.contains("decode") => Some("3"),
        Some(11) if message.contains("too%20large") || message.contains("too large") => Some("8"),
        _ => None,
    };
    if let Some(code) = fixed {
        headers.insert("grpc-status", http::HeaderValue::from_static(code));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unavailable_carries_retry_info() {
        let s = to_status(IngestError::Unavailable {
            message: "busy".into(),
            retry_after: Duration::from_secs(2),
        });
        assert_eq!(s.code(), Code::Unavailable);
        let details = s.get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            s.metadata()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
    }

    #[test]
    fn codec_errors_are_mapped_to_otlp_codes() {
        let resp = |code: &str, msg: &str| {
            let r = http::Response::builder()
                .header("grpc-status", code)
                .header("grpc-message", msg)
                .body(())
                .unwrap();
            normalize_status(r).headers()["grpc-status"]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(resp("13", "failed%20to%20decode%20Protobuf%20message"), "3");
        assert_eq!(
            resp("11", "Error,%20decoded%20message%20length%20too%20large"),
            "8"
        );
        assert_eq!(resp("13", "write-ahead%20log%20error"), "13");
        assert_eq!(resp("14", "busy"), "14");
    }

    #[test]
    fn codes() {
        assert_eq!(
            to_status(IngestError::BadRequest("x".into())).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            to_status(IngestError::TooLarge("x".into())).code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            to_status(IngestError::Internal("x".into())).code(),
            Code::Internal
        );
    }
}
