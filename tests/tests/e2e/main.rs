//! The end-to-end suite, one test binary: each module is one area of the
//! product, started as the real binaries and driven with real clients.
//! One binary instead of one per file keeps the debug build small (every
//! test binary links the SDKs, tonic and reqwest again) and links once.
//!
//! Run one area: `cargo test -p skein-e2e --test e2e -- ui_pages::`.

mod agent_buffer;
mod agent_deploy;
mod agent_forward;
mod agent_heartbeat;
mod agent_tail;
mod alerts_liveness;
mod alerts_rules;
mod backpressure;
mod bad_input;
mod chains_reconstruction;
mod crash;
mod demo;
mod derived_graph;
mod derived_prometheus;
mod loki_api;
mod loki_deploy;
mod loki_prometheus;
mod otlp_json;
mod registry_etcd;
mod registry_liveness;
mod registry_restart;
mod sdk_python;
mod sdk_rust;
mod search_lang;
mod security;
mod shutdown;
mod ui_pages;
