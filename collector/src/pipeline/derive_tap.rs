//! Adapter: the hook of the derive subsystem into the data flow.
//!
//! [`DeriveTap`] wraps the indexer's [`RecordSource`]: every span record the
//! indexer reads (durable, in LSN order, replayed after a crash) is also
//! offered to the derive worker's bounded queue (a copy; dropped and counted
//! when full, never waited for). [`CheckpointGate`] makes the WAL trim only
//! up to what both the index has committed and the dependency graph has
//! saved, so a crash never loses graph data that the WAL no longer holds.
//! When the derive thread has ended, the gate passes the index position
//! through unchanged. Nothing else lives here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::derive::DeriveFeed;
use crate::index::{IndexInput, Lsn, RecordSource, Signal, SourceError};
use crate::wal::{Wal, WalError};

/// The WAL checkpoint as the minimum of two positions.
pub struct CheckpointGate {
    wal: Wal,
    index: AtomicU64,
    derived: AtomicU64,
}

impl CheckpointGate {
    /// Both positions start at the WAL's current checkpoint (nothing below
    /// it can be replayed anyway).
    pub fn new(wal: Wal) -> Arc<Self> {
        let start = wal.checkpoint_lsn();
        Arc::new(CheckpointGate {
            wal,
            index: AtomicU64::new(start),
            derived: AtomicU64::new(start),
        })
    }

    /// The index committed everything up to `lsn`.
    pub fn index_committed(&self, lsn: Lsn) -> Result<(), WalError> {
        self.index.fetch_max(lsn, Ordering::SeqCst);
        self.forward()
    }

    /// The dependency graph saved everything up to `lsn`.
    pub fn derived_saved(&self, lsn: Lsn) {
        self.derived.fetch_max(lsn, Ordering::SeqCst);
        if let Err(e) = self.forward() {
            tracing::warn!(lsn, error = %e, "WAL checkpoint after a dependency-graph save failed");
        }
    }

    /// The derive thread ended: stop holding the WAL back for it.
    pub fn derived_stopped(&self) {
        self.derived.store(Lsn::MAX, Ordering::SeqCst);
    }

    fn forward(&self) -> Result<(), WalError> {
        let lsn = self
            .index
            .load(Ordering::SeqCst)
            .min(self.derived.load(Ordering::SeqCst));
        self.wal.checkpoint(lsn)
    }
}

/// A [`RecordSource`] that also feeds the derive worker.
pub struct DeriveTap<S> {
    inner: S,
    feed: DeriveFeed,
    gate: Arc<CheckpointGate>,
}

impl<S> DeriveTap<S> {
    pub fn new(inner: S, feed: DeriveFeed, gate: Arc<CheckpointGate>) -> Self {
        DeriveTap { inner, feed, gate }
    }
}

impl<S: RecordSource> RecordSource for DeriveTap<S> {
    fn next_batch(
        &mut self,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<IndexInput>, SourceError> {
        let batch = self.inner.next_batch(max_bytes, timeout)?;
        for input in &batch {
            if input.signal == Signal::Spans {
                self.feed.offer(input.payload.clone(), input.end_lsn);
            }
        }
        Ok(batch)
    }

    /// The inner source is not checkpointed directly: the gate does it.
    fn checkpoint(&mut self, lsn: Lsn) -> Result<(), SourceError> {
        self.gate.index_committed(lsn)?;
        Ok(())
    }

    fn backlog_bytes(&self) -> Option<u64> {
        self.inner.backlog_bytes()
    }
}
