//! gRPC `Export` servers that hand the handler the request's protobuf
//! bytes, undecoded.
//!
//! tonic's generated `TraceServiceServer`/`LogsServiceServer` decode with a
//! fixed prost codec and drop the wire bytes, so a receiver that stores the
//! request (the collector's write-ahead log, the agent's buffer) had to
//! encode it again: a fifth of the gRPC runtime's CPU at full log ingest.
//! The codec here splits the message's bytes off tonic's receive buffer
//! (no copy: `BytesMut::split_to`) and hands them over as they are; the
//! handler decides whether it needs them decoded (see [`crate::scan`]).
//!
//! This module owns only the transport plumbing (routing, compression and
//! size configuration, the codec); what an export means is the
//! [`RawExport`] implementation's business.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use prost::Message;
use tonic::body::Body as TonicBody;
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings,
    EncodeBuf, Encoder,
};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

/// One unary `Export` method served with [`RawExportServer`].
pub trait RawExport: Send + Sync + 'static {
    type Response: Message + Send + 'static;
    /// Fully qualified service name, e.g. `opentelemetry.proto.collector.logs.v1.LogsService`.
    const SERVICE: &'static str;
    /// The method's path, `/<SERVICE>/Export`.
    const PATH: &'static str;

    /// Handle one request: `raw` is its protobuf encoding, uncompressed,
    /// exactly as the client encoded it (and not yet known to decode).
    fn export(&self, raw: Bytes) -> impl Future<Output = Result<Self::Response, Status>> + Send;
}

/// A tonic service for one [`RawExport`]: routes its path, answers
/// `UNIMPLEMENTED` for any other, applies compression and size limits like
/// the generated servers do.
pub struct RawExportServer<H> {
    handler: Arc<H>,
    accept: EnabledCompressionEncodings,
    send: EnabledCompressionEncodings,
    max_decoding_message_size: Option<usize>,
}

impl<H> Clone for RawExportServer<H> {
    fn clone(&self) -> Self {
        RawExportServer {
            handler: Arc::clone(&self.handler),
            accept: self.accept,
            send: self.send,
            max_decoding_message_size: self.max_decoding_message_size,
        }
    }
}

impl<H: RawExport> RawExportServer<H> {
    pub fn new(handler: H) -> Self {
        RawExportServer {
            handler: Arc::new(handler),
            accept: EnabledCompressionEncodings::default(),
            send: EnabledCompressionEncodings::default(),
            max_decoding_message_size: None,
        }
    }

    /// Accept requests compressed with `encoding`.
    #[must_use]
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.accept.enable(encoding);
        self
    }

    /// Compress responses with `encoding` when the client accepts it.
    #[must_use]
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.send.enable(encoding);
        self
    }

    /// Largest decoded (inflated) message; tonic answers larger ones itself.
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.max_decoding_message_size = Some(limit);
        self
    }
}

impl<H: RawExport> NamedService for RawExportServer<H> {
    const NAME: &'static str = H::SERVICE;
}

impl<H, B> tonic::codegen::Service<http::Request<B>> for RawExportServer<H>
where
    H: RawExport,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != H::PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let method = Method(Arc::clone(&self.handler));
        let mut grpc = Grpc::new(RawCodec::<H::Response>::default())
            .apply_compression_config(self.accept, self.send)
            .apply_max_message_size_config(self.max_decoding_message_size, None);
        Box::pin(async move { Ok(grpc.unary(method, req).await) })
    }
}

struct Method<H>(Arc<H>);

impl<H: RawExport> UnaryService<Bytes> for Method<H> {
    type Response = H::Response;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response<H::Response>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handler = Arc::clone(&self.0);
        Box::pin(async move {
            handler
                .export(request.into_inner())
                .await
                .map(Response::new)
        })
    }
}

/// prost encoding out, the message's bytes in.
struct RawCodec<Out>(PhantomData<fn(Out)>);

impl<Out> Default for RawCodec<Out> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<Out> Codec for RawCodec<Out>
where
    Out: Message + Send + 'static,
{
    type Encode = Out;
    type Decode = Bytes;
    type Encoder = ProstEncoder<Out>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

struct ProstEncoder<M>(PhantomData<fn(M)>);

impl<M: Message> Encoder for ProstEncoder<M> {
    type Item = M;
    type Error = Status;

    fn encode(&mut self, item: M, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // EncodeBuf grows as needed: encoding into it cannot run out of room.
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
