//! The OTLP/gRPC client to the collector: pre-encoded requests sent as raw
//! bytes (no re-encoding), compressed here rather than by tonic (whose gzip
//! is fixed at level 6, a third of the replay rate the agent needs), bearer
//! token, TLS verified with `--collector-ca`. Classifies every failure as
//! retryable (with the server's hint from `RetryInfo` or `retry-after`) or
//! permanent, following the OTLP spec. Owns the connection only; no retry
//! loop, no buffer.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::uri::PathAndQuery;
use http_body_util::BodyExt;
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

/// zstd's level: tonic's default, which replays at 73 MB/s.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The `grpc-encoding` the compressed message is sent with.
    fn header(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        }
    }

    /// One export message as it goes on the wire. gzip is zlib's fastest
    /// level: OTLP protobuf is repetitive enough that it still shrinks ~4x
    /// (level 6 gains a few percent more at three times the CPU), and the
    /// exporter's rate after an outage is bounded by this call.
    pub fn compress(self, body: &Bytes) -> std::io::Result<Bytes> {
        match self {
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 3),
                    flate2::Compression::fast(),
                );
                gz.write_all(body)?;
                Ok(gz.finish()?.into())
            }
            Compression::Zstd => Ok(zstd::bulk::compress(body, ZSTD_LEVEL)?.into()),
            Compression::None => Ok(body.clone()),
        }
    }
}

/// Marks the message of a request that carries a `grpc-encoding` as
/// compressed (the flag byte of its gRPC frame): the body was compressed by
/// [`Compression::compress`], and tonic, which was not asked to compress,
/// writes the flag as 0.
#[derive(Clone)]
pub struct MarkCompressed<S>(S);

impl<S> tower::Service<http::Request<tonic::body::Body>> for MarkCompressed<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> S::Future {
        if !req.headers().contains_key("grpc-encoding") {
            return self.0.call(req);
        }
        // A unary call's body is one data frame: the 5-byte gRPC prefix
        // (flag, length) and the message.
        let req = req.map(|body| {
            let mut first = true;
            tonic::body::Body::new(body.map_frame(move |frame| {
                if !first {
                    return frame;
                }
                match frame.into_data() {
                    Ok(data) => {
                        first = false;
                        let mut data = BytesMut::from(data);
                        if let Some(flag) = data.first_mut() {
                            *flag = 1;
                        }
                        http_body::Frame::data(data.freeze())
                    }
                    Err(frame) => frame,
                }
            }))
        });
        self.0.call(req)
    }
}

/// One lazily connected HTTP/2 channel to the collector.
#[derive(Clone)]
pub struct CollectorClient {
    grpc: Grpc<MarkCompressed<Channel>>,
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
        let grpc = Grpc::new(MarkCompressed(endpoint.connect_lazy()))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
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
        let encoding = self.compression.header();
        let wire = self
            .compression
            .compress(&body)
            .map_err(|e| ExportFailure {
                code: Code::Internal,
                message: format!("compressing the batch: {e}"),
                retryable: false,
                hint: None,
            })?;
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unavailable(format!("collector not reachable: {e}")))?;
            let mut req = Request::new(wire);
            req.set_timeout(timeout);
            if let Some(name) = encoding {
                req.metadata_mut()
                    .insert("grpc-encoding", MetadataValue::from_static(name));
            }
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

    /// Keeps what it receives.
    #[derive(Clone, Default)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<ExportTraceServiceRequest>>>);

    #[tonic::async_trait]
    impl TraceService for Recorder {
        async fn export(
            &self,
            req: Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
            self.0.lock().unwrap().push(req.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    fn request(spans: usize) -> ExportTraceServiceRequest {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans)
                        .map(|i| Span {
                            trace_id: vec![7; 16],
                            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                            name: format!("GET /items/{i}"),
                            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                            end_time_unix_nano: 1_700_000_000_000_100_000 + i as u64,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    async fn serve(accept: &[CompressionEncoding]) -> (String, Recorder) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = Recorder::default();
        let mut service = TraceServiceServer::new(recorder.clone());
        for &e in accept {
            service = service.accept_compressed(e);
        }
        let server = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        (format!("http://{addr}"), recorder)
    }

    #[tokio::test]
    async fn every_compression_arrives_as_the_request_that_was_sent() {
        let sent = request(2_000);
        let body = Bytes::from(sent.encode_to_vec());
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let (url, recorder) =
                serve(&[CompressionEncoding::Gzip, CompressionEncoding::Zstd]).await;
            let mut client =
                CollectorClient::new(&url, None, None, Duration::from_secs(5), compression)
                    .unwrap();
            client.export(Kind::Traces, body.clone()).await.unwrap();
            client.export(Kind::Traces, Bytes::new()).await.unwrap();
            let got = recorder.0.lock().unwrap().clone();
            assert_eq!(got.len(), 2, "{compression:?}");
            assert_eq!(
                got[0], sent,
                "{compression:?}: the message changed on the way"
            );
            assert_eq!(got[1], ExportTraceServiceRequest::default());
        }
    }

    #[tokio::test]
    async fn a_compressed_export_says_so_on_the_wire() {
        // A server that takes no compression refuses the request: the
        // encoding went out as a header, not only as compressed bytes.
        let (url, recorder) = serve(&[]).await;
        let mut client =
            CollectorClient::new(&url, None, None, Duration::from_secs(5), Compression::Gzip)
                .unwrap();
        let failure = client
            .export(Kind::Traces, Bytes::from(request(10).encode_to_vec()))
            .await
            .unwrap_err();
        assert_eq!(failure.code, Code::Unimplemented, "{failure:?}");
        assert!(failure.message.contains("gzip"), "{failure:?}");
        assert!(recorder.0.lock().unwrap().is_empty());
    }

    #[test]
    fn gzip_still_shrinks_otlp_several_times() {
        let body = Bytes::from(request(2_000).encode_to_vec());
        let gz = Compression::Gzip.compress(&body).unwrap();
        assert!(
            gz.len() * 4 < body.len(),
            "{} -> {} bytes",
            body.len(),
            gz.len()
        );
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
