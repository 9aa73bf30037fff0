//! OTLP/gRPC receiver: `TraceService/Export` and `LogsService/Export`.
//!
//! The services, the error → code mapping (`RetryInfo` on `UNAVAILABLE`) and
//! the codec-error normalisation live in `skein-otlp` (shared with the
//! agent); here they are bound to the collector's [`Ingestor`].

use super::Ingestor;

pub use skein_otlp::grpc::{normalize_status, to_status};

/// The gRPC services, sharing one [`Ingestor`].
pub type OtlpGrpc = skein_otlp::grpc::OtlpGrpc<Ingestor>;
