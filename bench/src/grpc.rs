//! A gRPC client that sends pre-encoded OTLP export requests as raw bytes.
//!
//! [`RawCodec`] writes a `Bytes` body as is and hands the response back
//! undecoded, so the client never re-encodes the request; only the small
//! `Export*ServiceResponse` is decoded to read `partial_success`.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::gen::Signal;

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// A codec for pre-encoded protobuf messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Writes the request bytes unchanged.
#[derive(Debug)]
pub struct RawEncoder;

/// Returns the response bytes undecoded.
#[derive(Debug)]
pub struct RawDecoder;

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

/// What the collector said about an accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    /// Items rejected through `partial_success`.
    pub rejected: u64,
    /// `partial_success.error_message`, if any.
    pub message: String,
}

/// One HTTP/2 connection to an OTLP/gRPC endpoint; clones share it.
#[derive(Debug, Clone)]
pub struct OtlpClient {
    grpc: Grpc<Channel>,
}

impl OtlpClient {
    /// Opens a connection to `addr` (`host:port` or an `http://` URL).
    pub async fn connect(addr: &str) -> Result<Self> {
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let channel = Endpoint::from_shared(url.clone())
            .with_context(|| format!("bad OTLP/gRPC address {addr:?}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to OTLP/gRPC at {url}"))?;
        Ok(Self {
            grpc: Grpc::new(channel),
        })
    }

    /// Sends one pre-encoded `Export*ServiceRequest` and waits for the ack.
    pub async fn export(
        &mut self,
        signal: Signal,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Ack, Status> {
        let path = match signal {
            Signal::Spans => TRACE_EXPORT,
            Signal::Logs => LOGS_EXPORT,
        };
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
            let mut req = Request::new(body);
            req.set_timeout(timeout);
            self.grpc
                .unary::<Bytes, Bytes, _>(req, PathAndQuery::from_static(path), RawCodec)
                .await
        };
        let resp = tokio::time::timeout(timeout + Duration::from_secs(1), call)
            .await
            .map_err(|_| Status::deadline_exceeded("no response before the client timeout"))??
            .into_inner();
        decode_ack(signal, &resp)
    }
}

fn decode_ack(signal: Signal, resp: &[u8]) -> Result<Ack, Status> {
    let bad = |e: prost::DecodeError| Status::internal(format!("undecodable export response: {e}"));
    let partial = match signal {
        Signal::Spans => ExportTraceServiceResponse::decode(resp)
            .map_err(bad)?
            .partial_success
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Logs => ExportLogsServiceResponse::decode(resp)
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

/// The canonical upper-case name of a gRPC status code (`UNAVAILABLE`, …).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    #[test]
    fn acks_read_partial_success() {
        let resp = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "bad ids".into(),
            }),
        };
        let ack = decode_ack(Signal::Spans, &resp.encode_to_vec()).unwrap();
        assert_eq!(
            ack,
            Ack {
                rejected: 3,
                message: "bad ids".into()
            }
        );
        assert_eq!(decode_ack(Signal::Logs, &[]).unwrap(), Ack::default());
        assert!(decode_ack(Signal::Spans, &[0xff]).is_err());
    }
}
