//! Skein agent library: the sidecar beside each service.
//!
//! Shaped like the OpenTelemetry Collector — receivers → processing →
//! exporter — with the folders in data-flow order:
//!
//! ```text
//! receive/    OTLP gRPC + HTTP from local apps (skein-otlp's transports), validate, enrich
//! tail/       --tail GLOB files → log records; rotation-safe checkpoints
//! buffer/     segmented disk buffer: ack to apps = fsynced here; bounded by --buffer-max-bytes
//! export/     buffer → collector over OTLP/gRPC gzip, in order, backoff honouring retry hints
//! heartbeat/  health-gated lease renewals in the collector's registry
//! admin/      /healthz, /readyz, /metrics, /status
//! ```
//!
//! `config` turns flags/env/TOML into a validated [`config::Config`];
//! `pipeline` wires the pieces back to front and owns shutdown. The agent
//! must not depend on tantivy (nor on the collector crate).

pub mod admin;
pub mod buffer;
pub mod config;
pub mod export;
pub mod heartbeat;
pub mod pipeline;
pub mod receive;
pub mod tail;
pub mod telemetry;
pub mod tls;
