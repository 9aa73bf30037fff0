//! OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/logs`.
//!
//! Handles what is specific to HTTP — content type (protobuf or JSON), gzip
//! with an inflation limit, body size limit, status codes and `Retry-After` —
//! and hands decoded requests to an [`ExportSink`]. Error bodies are a
//! `google.rpc.Status` in the request's encoding, as the OTLP spec asks.

use std::io::Read;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;

use crate::{export_protobuf, Accepted, ExportSink, IngestError, Signal};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone)]
struct HttpState<S> {
    ingestor: S,
    max_request_bytes: usize,
}

/// The OTLP/HTTP routes. Body size is enforced here (no other layer needed).
pub fn router<S: ExportSink>(ingestor: S, max_request_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(traces::<S>))
        .route("/v1/logs", post(logs::<S>))
        // We enforce the limit ourselves (before and after inflation) to give
        // a precise message; lift axum's default 2 MB cap.
        .layer(DefaultBodyLimit::disable())
        .with_state(HttpState {
            ingestor,
            max_request_bytes,
        })
}

/// The two OTLP encodings over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        }
    }
}

async fn traces<S: ExportSink>(
    State(st): State<HttpState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let format = format_of(&headers);
    let reply_format = format.as_ref().map_or(Format::Json, |f| *f);
    let result = async {
        let format = format?;
        let bytes = read_body(&st, Signal::Traces, &headers, body).await?;
        match format {
            Format::Protobuf => export_protobuf(&st.ingestor, Signal::Traces, bytes).await,
            Format::Json => {
                let req: ExportTraceServiceRequest =
                    decode(format, &bytes, "ExportTraceServiceRequest")?;
                st.ingestor.export_traces(req, None).await
            }
        }
    }
    .await;
    st.ingestor
        .observe(Signal::Traces, "http", started, &result);
    let format = reply_format;
    match result {
        Ok(a) => success(format, trace_response(a)),
        Err(e) => error_response(format, e),
    }
}

async fn logs<S: ExportSink>(
    State(st): State<HttpState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let format = format_of(&headers);
    let reply_format = format.as_ref().map_or(Format::Json, |f| *f);
    let result = async {
        let format = format?;
        let bytes = read_body(&st, Signal::Logs, &headers, body).await?;
        match format {
            Format::Protobuf => export_protobuf(&st.ingestor, Signal::Logs, bytes).await,
            Format::Json => {
                let req: ExportLogsServiceRequest =
                    decode(format, &bytes, "ExportLogsServiceRequest")?;
                st.ingestor.export_logs(req, None).await
            }
        }
    }
    .await;
    st.ingestor.observe(Signal::Logs, "http", started, &result);
    let format = reply_format;
    match result {
        Ok(a) => success(format, logs_response(a)),
        Err(e) => error_response(format, e),
    }
}

fn trace_response(a: Accepted) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (a.rejected > 0 || !a.error_message.is_empty()).then_some(
            ExportTracePartialSuccess {
                rejected_spans: a.rejected,
                error_message: a.error_message,
            },
        ),
    }
}

fn logs_response(a: Accepted) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: (a.rejected > 0 || !a.error_message.is_empty()).then_some(
            ExportLogsPartialSuccess {
                rejected_log_records: a.rejected,
                error_message: a.error_message,
            },
        ),
    }
}

fn format_of(headers: &HeaderMap) -> Result<Format, IngestError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        "" => Err(IngestError::UnsupportedMediaType(
            "missing Content-Type: use application/x-protobuf or application/json".into(),
        )),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Type '{other}': use application/x-protobuf or application/json"
        ))),
    }
}

async fn read_body<S: ExportSink>(
    st: &HttpState<S>,
    signal: Signal,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, IngestError> {
    let max = st.max_request_bytes;
    let too_large = || {
        IngestError::TooLarge(format!(
            "request body is larger than --max-request-bytes ({max} bytes)"
        ))
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max as u64 {
            return Err(too_large());
        }
    }
    let bytes: Bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
        // `to_bytes` fails on the limit or on a broken connection.
        let limited = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if limited || e.to_string().contains("length limit") {
            too_large()
        } else {
            IngestError::BadRequest(format!("could not read the request body: {e}"))
        }
    })?;
    st.ingestor.count_request_bytes(signal, "http", bytes.len());

    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(bytes),
        "gzip" | "x-gzip" => inflate(&bytes, max).map(Bytes::from),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Encoding '{other}': use gzip or none"
        ))),
    }
}

/// Inflate gzip without ever holding more than `max` bytes (no zip bombs).
fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity((compressed.len() * 4).min(max));
    let mut reader = flate2::read::MultiGzDecoder::new(compressed).take(max as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadRequest(format!("invalid gzip body: {e}")))?;
    if out.len() > max {
        return Err(IngestError::TooLarge(format!(
            "request body inflates to more than --max-request-bytes ({max} bytes)"
        )));
    }
    Ok(out)
}

fn decode<M: Message + Default + DeserializeOwned>(
    format: Format,
    bytes: &[u8],
    what: &str,
) -> Result<M, IngestError> {
    match format {
        Format::Protobuf => M::decode(bytes)
            .map_err(|e| IngestError::BadRequest(format!("invalid protobuf {what}: {e}"))),
        Format::Json => serde_json::from_slice(bytes)
            .map_err(|e| IngestError::BadRequest(format!("invalid OTLP JSON {what}: {e}"))),
    }
}

fn success<M: Message + serde::Serialize>(format: Format, msg: M) -> Response {
    let body = match format {
        Format::Protobuf => msg.encode_to_vec(),
        Format::Json => serde_json::to_vec(&msg).unwrap_or_else(|_| b"{}".to_vec()),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Status code, gRPC code number and retry hint for each error kind.
pub fn http_status(e: &IngestError) -> (StatusCode, i32) {
    match e {
        IngestError::BadRequest(_) => (StatusCode::BAD_REQUEST, 3),
        IngestError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 3),
        IngestError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, 8),
        IngestError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, 16),
        IngestError::Forbidden(_) => (StatusCode::FORBIDDEN, 7),
        IngestError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, 14),
        IngestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 13),
    }
}

fn error_response(format: Format, e: IngestError) -> Response {
    let (status, code) = http_status(&e);
    let msg = RpcStatus {
        code,
        message: e.to_string(),
    };
    let body = match format {
        Format::Protobuf => msg.encode_to_vec(),
        Format::Json => serde_json::to_vec(&msg).unwrap_or_default(),
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response();
    if let IngestError::Unavailable { retry_after, .. } = &e {
        let secs = retry_after.as_secs().max(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    if matches!(e, IngestError::Unauthenticated(_)) {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            format_of(&h),
            Err(IngestError::UnsupportedMediaType(_))
        ));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(format_of(&h).unwrap(), Format::Json);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-Protobuf"),
        );
        assert_eq!(format_of(&h).unwrap(), Format::Protobuf);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let e = format_of(&h).unwrap_err().to_string();
        assert!(e.contains("text/plain"), "{e}");
    }

    #[test]
    fn gzip_inflation_is_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 4096);
        assert!(matches!(
            inflate(&bomb, 1000),
            Err(IngestError::TooLarge(_))
        ));
        assert_eq!(inflate(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        assert!(matches!(
            inflate(b"not gzip", 1000),
            Err(IngestError::BadRequest(_))
        ));
    }

    #[test]
    fn otlp_json_with_string_and_number_int64() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"curl"}}]},
            "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "name":"a","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
            "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"m","value":{"intValue":7}}]}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(Format::Json, body, "x").unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
        assert_eq!(span.kind, 2);
        let bad = decode::<ExportTraceServiceRequest>(Format::Json, b"{\"resourceSpans\":[", "x");
        assert!(matches!(bad, Err(IngestError::BadRequest(_))));
        let bad = decode::<ExportTraceServiceRequest>(Format::Protobuf, &[0xff, 0xff, 0xff], "x");
        assert!(matches!(bad, Err(IngestError::BadRequest(_))));
    }
}
