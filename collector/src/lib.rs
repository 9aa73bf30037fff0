//! Skein collector library.
//!
//! The folders follow the data flow, front to back:
//!
//! ```text
//! ingest/  OTLP receivers (gRPC, HTTP): decode, validate per item, append to the WAL
//! wal/     segmented write-ahead log: group commit, ack = fsynced, replay, checkpoints
//! index/   WAL → tantivy indexer, time partitions, retention, searches (the only tantivy user)
//! query/   the storage seam: query types and the `TraceStore`/`LogStore` traits
//! traces/  trace assembly: tree, orphans, clock skew, critical path, compare
//! derive/  from WAL span records: dependency graph (per-minute edges), span RED and service-graph metrics
//! api/     HTTP: Jaeger query API, native `/api/v1` API, `/metrics`
//! registry/ service registry: leases, revisions, watch, expiry, etcd source
//! alerts/  rules, evaluation, silences, notifications (webhook v4, Alertmanager)
//! ui/      the embedded web UI (static single-page app served at `/`)
//! wire.rs  borrowing protobuf field walker for reading WAL payloads undecoded (index, derive)
//! demo/    `--demo`: an instrumented 4-service system with in-process agents
//! ```
//!
//! `config` turns flags/env/TOML into a validated [`config::Config`]; `pipeline`
//! wires the pieces together in the order the data flows; `telemetry` owns the
//! Prometheus registry and tracing set-up.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod derive;
pub mod index;
pub mod ingest;
pub mod pipeline;
pub mod query;
pub mod registry;
pub mod telemetry;
pub mod tls;
pub mod traces;
pub mod ui;
pub mod wal;
pub mod wire;
