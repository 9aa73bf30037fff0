//! OTLP builders (requests with chosen ids) and raw OTLP clients: HTTP
//! (protobuf/JSON, optional gzip) and gRPC (tonic, no SDK in between), so
//! tests control every byte the collector sees.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use rand::Rng;
use tonic::transport::Channel;

pub const PROTOBUF: &str = "application/x-protobuf";
pub const JSON: &str = "application/json";

/// A random, non-zero 16-byte trace id.
pub fn new_trace_id() -> Vec<u8> {
    random_id(16)
}

/// A random, non-zero 8-byte span id.
pub fn new_span_id() -> Vec<u8> {
    random_id(8)
}

fn random_id(len: usize) -> Vec<u8> {
    let mut id = vec![0u8; len];
    rand::rng().fill(&mut id[..]);
    id[0] |= 1;
    id
}

/// Lowercase hex, as the Jaeger API spells ids.
pub fn hex(id: &[u8]) -> String {
    hex::encode(id)
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

pub fn str_attr(key: &str, value: &str) -> KeyValue {
    attr(key, any_value::Value::StringValue(value.to_string()))
}

pub fn int_attr(key: &str, value: i64) -> KeyValue {
    attr(key, any_value::Value::IntValue(value))
}

pub fn bool_attr(key: &str, value: bool) -> KeyValue {
    attr(key, any_value::Value::BoolValue(value))
}

fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A valid server span that ended just now and lasted 10 ms.
pub fn span(trace_id: &[u8], span_id: &[u8], name: &str) -> Span {
    let end = now_ns();
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: name.to_string(),
        kind: 2,
        start_time_unix_nano: end - 10_000_000,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

/// One resource (`service.name` = `service`) with one scope holding `spans`.
pub fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An INFO log record observed just now with `body`.
pub fn log_record(body: &str) -> LogRecord {
    let now = now_ns();
    LogRecord {
        time_unix_nano: now,
        observed_time_unix_nano: now,
        severity_number: 9,
        severity_text: "INFO".to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_string())),
        }),
        ..Default::default()
    }
}

/// [`log_record`] tied to a span.
pub fn log_in_span(trace_id: &[u8], span_id: &[u8], body: &str) -> LogRecord {
    LogRecord {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        ..log_record(body)
    }
}

/// One resource (`service.name` = `service`) with one scope holding `records`.
pub fn logs(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![str_attr("service.name", service)],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "skein-e2e".to_string(),
        version: "1".to_string(),
        ..Default::default()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

// ---------------------------------------------------------------- OTLP/HTTP

/// A raw HTTP answer.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn http_client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        crate::http_client()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("building the HTTP client")
    })
}

/// POST `body` to `url` with `Content-Type: content_type` and, when
/// `content_encoding` is given, that `Content-Encoding` (the body is sent as
/// is: compress it yourself).
pub fn post(
    url: &str,
    content_type: &str,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> HttpReply {
    let mut req = http_client().post(url).header("content-type", content_type);
    if let Some(enc) = content_encoding {
        req = req.header("content-encoding", enc);
    }
    let resp = req
        .body(body)
        .send()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    HttpReply {
        status,
        headers,
        body,
    }
}

/// POST a protobuf trace export to `<otlp_http_base>/v1/traces`.
pub fn post_traces(otlp_http_base: &str, req: &ExportTraceServiceRequest) -> HttpReply {
    post(
        &format!("{otlp_http_base}/v1/traces"),
        PROTOBUF,
        None,
        req.encode_to_vec(),
    )
}

/// POST a protobuf log export to `<otlp_http_base>/v1/logs`.
pub fn post_logs(otlp_http_base: &str, req: &ExportLogsServiceRequest) -> HttpReply {
    post(
        &format!("{otlp_http_base}/v1/logs"),
        PROTOBUF,
        None,
        req.encode_to_vec(),
    )
}

/// [`post_traces`] that must answer 200; the decoded response.
pub fn export_traces_http(
    otlp_http_base: &str,
    req: &ExportTraceServiceRequest,
) -> ExportTraceServiceResponse {
    let reply = post_traces(otlp_http_base, req);
    assert_eq!(reply.status, 200, "POST /v1/traces: {}", reply.text());
    ExportTraceServiceResponse::decode(&reply.body[..])
        .expect("protobuf ExportTraceServiceResponse")
}

/// [`post_logs`] that must answer 200; the decoded response.
pub fn export_logs_http(
    otlp_http_base: &str,
    req: &ExportLogsServiceRequest,
) -> ExportLogsServiceResponse {
    let reply = post_logs(otlp_http_base, req);
    assert_eq!(reply.status, 200, "POST /v1/logs: {}", reply.text());
    ExportLogsServiceResponse::decode(&reply.body[..]).expect("protobuf ExportLogsServiceResponse")
}

// ---------------------------------------------------------------- OTLP/gRPC

/// A lazily connected channel to `endpoint` (`http://host:port`). Must be
/// called inside a tokio runtime.
pub fn channel(endpoint: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .expect("valid gRPC endpoint")
        .timeout(Duration::from_secs(30))
        .connect_lazy()
}

/// A blocking OTLP/gRPC client (owns a small runtime), for `#[test]` code.
pub struct GrpcClient {
    rt: tokio::runtime::Runtime,
    traces: TraceServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
}

impl GrpcClient {
    pub fn new(endpoint: &str) -> GrpcClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let ch = rt.block_on(async { channel(endpoint) });
        GrpcClient {
            rt,
            traces: TraceServiceClient::new(ch.clone()),
            logs: LogsServiceClient::new(ch),
        }
    }

    pub fn export_traces(
        &mut self,
        req: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, tonic::Status> {
        let client = &mut self.traces;
        self.rt.block_on(client.export(req)).map(|r| r.into_inner())
    }

    pub fn export_logs(
        &mut self,
        req: ExportLogsServiceRequest,
    ) -> Result<ExportLogsServiceResponse, tonic::Status> {
        let client = &mut self.logs;
        self.rt.block_on(client.export(req)).map(|r| r.into_inner())
    }

    /// The runtime the client runs on (for extra async calls).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

/// Send `body` as the raw protobuf message of gRPC method `path` (e.g.
/// `/opentelemetry.proto.collector.trace.v1.TraceService/Export`), bypassing
/// client-side encoding so undecodable bytes reach the server.
pub async fn grpc_raw_unary(
    endpoint: &str,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(endpoint));
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connecting: {e}")))?;
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

pub const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// A gRPC codec whose messages are raw bytes.
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}
