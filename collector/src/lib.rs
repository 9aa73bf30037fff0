//! Skein collector library.
//!
//! The folders follow the data flow, front to back:
//!
//! ```text
//! ingest/  OTLP receivers (gRPC, HTTP): decode, validate per item, append to the WAL
//! wal/     segmented write-ahead log: group commit, ack = fsynced, replay, checkpoints
//! index/   WAL → tantivy indexer, time partitions, retention, searches (the only tantivy user)
//! query/   the storage seam: query types and the `TraceStore`/`LogStore` traits
//! api/     HTTP: Jaeger query API, native `/api/v1` API, `/metrics`
//! ui/      the embedded web UI (static single-page app served at `/`)
//! ```
//!
//! `config` turns flags/env/TOML into a validated [`config::Config`]; `pipeline`
//! wires the pieces together in the order the data flows; `telemetry` owns the
//! Prometheus registry and tracing set-up.

pub mod api;
pub mod auth;
pub mod config;
pub mod index;
pub mod ingest;
pub mod pipeline;
pub mod query;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod wal;
