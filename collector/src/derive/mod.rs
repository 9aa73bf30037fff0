//! Data derived from spans as they are ingested: the service dependency
//! graph and the RED metrics.
//!
//! ```text
//! indexer thread ──(WAL span records, bounded queue, drop when full)──▶ derive worker
//!                                                                        │ wire.rs: scan each span once
//!                                                                        ├─▶ spanmetrics.rs   traces_span_metrics_*
//!                                                                        ├─▶ dependencies/    pairing → per-minute edges → hour files
//!                                                                        └─▶ servicegraph.rs  traces_service_graph_*
//! ```
//!
//! **Hook point.** The worker is fed from the indexer's record source (see
//! `pipeline/derive_tap.rs`), not from the ingest path: those records are
//! durable, arrive in LSN order, and are replayed after a crash, so the
//! graph sees every acknowledged span exactly once per hour file (each hour
//! file records the WAL position it covers and replayed edges at or below
//! it are skipped). The WAL is only trimmed up to what both the index and
//! the saved graph cover. Nothing here runs on the ack path, and the
//! indexer only copies the record into a bounded queue: when the worker
//! falls behind, records are dropped and counted
//! (`skein_derive_queue_dropped_total`), never waited for.
//!
//! Bounds: `--max-series` label sets per metric family (and edges per
//! minute); names interned for pairing capped at the same number; the pair
//! store at [`PENDING_CAP`] spans for [`PAIR_WAIT`] each.
//!
//! This module must not touch the WAL, the index or HTTP; it gets bytes in
//! and offers [`Derived`] (the graph queries) and the `/metrics` collector.

pub mod dependencies;
pub mod exposition;
pub mod metrics;
pub mod queue;
pub mod servicegraph;
pub mod spanmetrics;
pub mod wire;
pub mod worker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use dependencies::pairing::Pairer;
pub use dependencies::{Caller, DependencyError, DependencyGraph, EdgeSummary};
use exposition::DerivedCollector;
pub use metrics::DeriveMetrics;
use queue::{Queue, Record};
use servicegraph::ServiceGraph;
use spanmetrics::SpanMetrics;
use worker::{Interner, OnSaved, Worker};

use crate::index::{Clock, Lsn};
use crate::telemetry::Registry;

/// Spans the pair store holds at most (about 100 bytes each).
pub const PENDING_CAP: usize = 262_144;
/// How long a span waits for its partner (Tempo's default).
pub const PAIR_WAIT: Duration = Duration::from_secs(10);
/// Bytes of WAL records the hand-off queue holds at most.
pub const QUEUE_BYTES: usize = 64 << 20;
/// How often the dependency graph is saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Settings of the derive subsystem.
#[derive(Debug, Clone)]
pub struct DeriveConfig {
    /// `<data-dir>/derived`.
    pub dir: PathBuf,
    /// Buckets older than this are dropped (the span retention).
    pub retention: Duration,
    /// `--max-series`.
    pub max_series: usize,
    pub pending_cap: usize,
    pub pair_wait: Duration,
    pub queue_bytes: usize,
    pub save_every: Duration,
}

impl DeriveConfig {
    pub fn new(dir: PathBuf, retention: Duration, max_series: usize) -> Self {
        DeriveConfig {
            dir,
            retention,
            max_series,
            pending_cap: PENDING_CAP,
            pair_wait: PAIR_WAIT,
            queue_bytes: QUEUE_BYTES,
            save_every: SAVE_EVERY,
        }
    }
}

/// Why the derive subsystem could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error("opening the dependency graph: {0}")]
    Graph(#[from] DependencyError),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("starting the derive thread: {0}")]
    Thread(std::io::Error),
}

/// Read side, for the HTTP API and other modules. Cheap to clone.
#[derive(Clone)]
pub struct Derived {
    pub graph: DependencyGraph,
}

impl Derived {
    /// Services that called `service` in the last `window`, with calls per
    /// minute (for alerts: who is affected when `service` is down).
    pub fn callers(&self, service: &str, window: Duration) -> Vec<Caller> {
        self.graph.callers(service, window)
    }
}

/// Write side: where the indexer's record source hands span records.
#[derive(Clone)]
pub struct DeriveFeed {
    queue: Arc<Queue>,
}

impl DeriveFeed {
    /// Offer one WAL span record; `false` (counted) when the queue is full.
    pub fn offer(&self, payload: Vec<u8>, end_lsn: Lsn) -> bool {
        self.queue.push(Record { payload, end_lsn })
    }
}

/// The running worker thread.
pub struct DeriveRunning {
    queue: Arc<Queue>,
    thread: JoinHandle<()>,
}

impl DeriveRunning {
    /// Close the queue, let the worker drain it and save, and wait for it.
    pub fn stop(self) {
        self.queue.close();
        if self.thread.join().is_err() {
            tracing::error!("the derive thread panicked");
        }
    }
}

/// Open the graph, register the metrics and start the worker thread
/// (`skein-derive`). `on_saved` is called from that thread with the WAL
/// position the saved graph covers; `on_exit` when the thread ends for any
/// reason (also a panic), so a gate on WAL trimming can open.
pub fn start(
    cfg: DeriveConfig,
    registry: &Registry,
    clock: Arc<dyn Clock>,
    on_saved: OnSaved,
    on_exit: Box<dyn FnOnce() + Send>,
) -> Result<(Derived, DeriveFeed, DeriveRunning), DeriveError> {
    let graph = DependencyGraph::open(
        cfg.dir.join("dependencies"),
        cfg.retention,
        cfg.max_series,
        clock.clone(),
    )?;
    let metrics = DeriveMetrics::register(registry)?;
    let span_metrics = Arc::new(Mutex::new(SpanMetrics::new(cfg.max_series)));
    let service_graph = Arc::new(Mutex::new(ServiceGraph::new(cfg.max_series)));
    registry.register(Box::new(DerivedCollector::new(
        span_metrics.clone(),
        service_graph.clone(),
    )?))?;
    let queue = Arc::new(Queue::new(cfg.queue_bytes, metrics.clone()));
    let worker = Worker::new(
        queue.clone(),
        span_metrics,
        service_graph,
        graph.clone(),
        Pairer::new(cfg.pending_cap, cfg.pair_wait.as_millis() as u64),
        Interner::new(cfg.max_series),
        clock,
        metrics,
        cfg.save_every,
        on_saved,
    );
    let thread = std::thread::Builder::new()
        .name("skein-derive".into())
        .spawn(move || {
            struct Exit(Option<Box<dyn FnOnce() + Send>>);
            impl Drop for Exit {
                fn drop(&mut self) {
                    if let Some(f) = self.0.take() {
                        f();
                    }
                }
            }
            let _exit = Exit(Some(on_exit));
            worker.run();
        })
        .map_err(DeriveError::Thread)?;
    Ok((
        Derived { graph },
        DeriveFeed {
            queue: queue.clone(),
        },
        DeriveRunning { queue, thread },
    ))
}
