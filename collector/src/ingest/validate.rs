//! Per-item validation of OTLP requests: the shared implementation in
//! `skein-otlp` (the agent answers with exactly the same rules).

pub use skein_otlp::validate::*;
