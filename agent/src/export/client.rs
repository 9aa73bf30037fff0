//! The OTLP/gRPC client to the collector: pre-encoded requests sent as raw
//! bytes (no re-encoding), gzip, bearer token, TLS verified with
//! `--collector-ca`. Classifies every failure as retryable (with the
//! server's hint from `RetryInfo` or `retry-after`) or permanent, following
//! the OTLP spec. Owns the connection only; no retry loop, no buffer.

use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::buffer::Kind;

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Why the client could not be set up (start-up errors).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid collector OTLP URL '{url}': {message}")]
    Url { url: String, message: String },
    #[error("reading {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no token")]
    EmptyToken { path: std::path::PathBuf },
    #[error("TLS set-up for the collector: {0}")]
    Tls(String),
}

/// How an export call failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFailure {
    pub code: Code,
    pub message: String,
    /// Worth retrying (the data is kept); otherwise it is dropped.
    pub retryable: bool,
    /// The server's requested wait (`RetryInfo` or `retry-after`).
    pub hint: Option<Duration>,
}

/// What the collector said about an accepted export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    pub rejected: u64,
    pub message: String,
}

/// How exports are compressed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    fn encoding(self) -> Option<CompressionEncoding> {
        match self {
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
            Compression::None => None,
        }
    }
}

/// One lazily connected HTTP/2 channel to the collector.
#[derive(Clone)]
pub struct CollectorClient {
    grpc: Grpc<Channel>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    timeout: Duration,
    compression: Compression,
}

impl CollectorClient {
    /// Build the client; connects on first use, so the agent starts while
    /// the collector is down.
    pub fn new(
        url: &str,
        ca: Option<&Path>,
        token_file: Option<&Path>,
        timeout: Duration,
        compression: Compression,
    ) -> Result<Self, ClientError> {
        let bad = |message: String| ClientError::Url {
            url: url.to_string(),
            message,
        };
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| bad(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(3))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(false);
        if url.starts_with("https://") {
            // Config validation makes --collector-ca mandatory for https.
            let path = ca.ok_or_else(|| {
                ClientError::Tls("an https:// collector needs --collector-ca".into())
            })?;
            let pem = std::fs::read(path).map_err(|source| ClientError::File {
                path: path.to_path_buf(),
                source,
            })?;
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            if let Some(host) = url
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_string))
            {
                tls = tls.domain_name(host.trim_matches(['[', ']']).to_string());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| ClientError::Tls(e.to_string()))?;
        }
        let token = match token_file {
            Some(path) => Some(bearer(path)?),
            None => None,
        };
        let mut grpc = Grpc::new(endpoint.connect_lazy())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(encoding) = compression.encoding() {
            grpc = grpc.send_compressed(encoding);
        }
        Ok(CollectorClient {
            grpc,
            token,
            timeout,
            compression,
        })
    }

    /// Send one pre-encoded `Export*ServiceRequest`.
    pub async fn export(&mut self, kind: Kind, body: Bytes) -> Result<Ack, ExportFailure> {
        let path = match kind {
            Kind::Traces => TRACE_EXPORT,
            Kind::Logs => LOGS_EXPORT,
        };
        let timeout = self.timeout;
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unavailable(format!("collector not reachable: {e}")))?;
            let mut req = Request::new(body);
            req.set_timeout(timeout);
            if let Some(t) = &self.token {
                req.metadata_mut().insert("authorization", t.clone());
            }
            self.grpc
                .unary::<Bytes, Bytes, _>(req, PathAndQuery::from_static(path), RawCodec)
                .await
        };
        let resp = match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status))
                if self.compression == Compression::Zstd && refuses_compression(&status) =>
            {
                // An upstream without zstd: every batch would be dropped as
                // a permanent error. Switch to gzip (every OTLP receiver
                // takes it) and have this batch retried at once.
                tracing::warn!(
                    "the collector does not accept zstd; exporting with gzip from now on: {}",
                    status.message()
                );
                self.compression = Compression::Gzip;
                self.grpc = self.grpc.clone().send_compressed(CompressionEncoding::Gzip);
                return Err(ExportFailure {
                    code: status.code(),
                    message: format!("switched to gzip: {}", status.message()),
                    retryable: true,
                    hint: Some(Duration::ZERO),
                });
            }
            Ok(Err(status)) => return Err(classify(&status)),
            Err(_) => {
                return Err(classify(&Status::deadline_exceeded(
                    "no answer from the collector within --export-timeout",
                )))
            }
        };
        decode_ack(kind, &resp).map_err(|e| classify(&e))
    }
}

/// A server's answer to a compression it does not support (gRPC says
/// UNIMPLEMENTED for it; tonic's text names the encoding).
fn refuses_compression(status: &Status) -> bool {
    status.code() == Code::Unimplemented && status.message().contains("compressed with")
}

fn bearer(path: &Path) -> Result<MetadataValue<tonic::metadata::Ascii>, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| ClientError::EmptyToken {
            path: path.to_path_buf(),
        })?;
    format!("Bearer {token}").parse().map_err(|_| {
        ClientError::Tls(format!(
            "the token in {} is not valid ASCII",
            path.display()
        ))
    })
}

/// The token file's token, for the heartbeat client.
pub fn read_token(path: &Path) -> Result<String, ClientError> {
    let v = bearer(path)?;
    Ok(v.to_str()
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_string())
}

/// OTLP's retry rules: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED,
/// OUT_OF_RANGE, DATA_LOSS are retryable; RESOURCE_EXHAUSTED only with a
/// retry hint. UNAUTHENTICATED / PERMISSION_DENIED are kept and retried too
/// (a token fix must not cost the buffered data). Everything else is permanent.
pub fn classify(status: &Status) -> ExportFailure {
    let details = status.get_error_details();
    let hint = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .or_else(|| {
            status
                .metadata()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        });
    let retryable = match status.code() {
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss
        | Code::Unauthenticated
        | Code::PermissionDenied => true,
        Code::ResourceExhausted => hint.is_some(),
        _ => false,
    };
    ExportFailure {
        code: status.code(),
        message: status.message().to_string(),
        retryable,
        hint,
    }
}

fn decode_ack(kind: Kind, resp: &[u8]) -> Result<Ack, Status> {
    let bad = |e: prost::DecodeError| Status::internal(format!("undecodable export response: {e}"));
    let partial = match kind {
        Kind::Traces => ExportTraceServiceResponse::decode(resp)
            .map_err(bad)?
            .partial_success
            .map(|p| (p.rejected_spans, p.error_message)),
        Kind::Logs => ExportLogsServiceResponse::decode(resp)
            .map_err(bad)?
            .partial_success
            .map(|p| (p.rejected_log_records, p.error_message)),
    };
    Ok(partial
        .map(|(rejected, message)| Ack {
            rejected: rejected.max(0) as u64,
            message,
        })
        .unwrap_or_default())
}

/// A codec for pre-encoded protobuf messages.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn classification_follows_the_otlp_spec() {
        let s = Status::with_error_details(
            Code::Unavailable,
            "busy",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
        );
        let f = classify(&s);
        assert!(f.retryable);
        assert_eq!(f.hint, Some(Duration::from_secs(3)));

        let mut s = Status::resource_exhausted("slow down");
        assert!(
            !classify(&s).retryable,
            "RESOURCE_EXHAUSTED without a hint is permanent"
        );
        s.metadata_mut().insert("retry-after", "2".parse().unwrap());
        let f = classify(&s);
        assert!(f.retryable);
        assert_eq!(f.hint, Some(Duration::from_secs(2)));

        assert!(!classify(&Status::invalid_argument("bad")).retryable);
        assert!(classify(&Status::unauthenticated("token")).retryable);
    }

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };

    #[derive(Clone)]
    struct GzipOnly;

    #[tonic::async_trait]
    impl TraceService for GzipOnly {
        async fn export(
            &self,
            _: Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    #[tokio::test]
    async fn zstd_falls_back_to_gzip_when_the_upstream_refuses_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(GzipOnly).accept_compressed(CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        let mut client = CollectorClient::new(
            &format!("http://{addr}"),
            None,
            None,
            Duration::from_secs(5),
            Compression::Zstd,
        )
        .unwrap();
        let body = Bytes::new();
        let first = client.export(Kind::Traces, body.clone()).await.unwrap_err();
        assert!(first.retryable, "the batch is kept: {first:?}");
        assert_eq!(first.hint, Some(Duration::ZERO));
        assert_eq!(client.compression, Compression::Gzip);
        client.export(Kind::Traces, body).await.unwrap();
    }
}
