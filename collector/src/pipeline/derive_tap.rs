//! Adapter: the hook of the derive subsystem into the data flow.
//!
//! [`DeriveTap`] wraps the indexer's [`RecordSource`]: every span record the
//! indexer reads (durable, in LSN order, replayed after a crash) is also
//! offered to the derive worker's bounded queue (a copy; dropped and counted
//! when full, never waited for). [`CheckpointGate`] makes the WAL trim only
//! up to what both the index has committed and the dependency graph has
//! saved, so a crash never loses graph data that the WAL no longer holds.
//! Only span records wait for the graph: once it has saved every span
//! record handed to it, the index position passes through (a logs-only
//! stream used to leave the graph's position where the last span was, so
//! the WAL was never trimmed and ingest was refused for good after
//! `--max-wal-backlog`). When the derive thread has ended, the gate passes
//! the index position through unchanged. Nothing else lives here.

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
    /// The end LSN of the last span record handed to the derive worker.
    offered: AtomicU64,
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
            offered: AtomicU64::new(start),
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

    /// A span record ending at `lsn` was handed to the derive worker. Called
    /// before the indexer sees the record, so the index position cannot pass
    /// it first.
    pub fn derive_offered(&self, lsn: Lsn) {
        self.offered.fetch_max(lsn, Ordering::SeqCst);
    }

    /// The derive thread ended: stop holding the WAL back for it.
    pub fn derived_stopped(&self) {
        self.derived.store(Lsn::MAX, Ordering::SeqCst);
    }

    fn forward(&self) -> Result<(), WalError> {
        self.wal.checkpoint(self.position())
    }

    /// Where the WAL may be trimmed to: the index's position, held back to
    /// the graph's only while a span record handed to it is not saved yet.
    fn position(&self) -> Lsn {
        let derived = self.derived.load(Ordering::SeqCst);
        let waiting = self.offered.load(Ordering::SeqCst) > derived;
        let index = self.index.load(Ordering::SeqCst);
        if waiting {
            index.min(derived)
        } else {
            index
        }
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
            // A record the queue drops (full) is never derived, so it is
            // not waited for either.
            if input.signal == Signal::Spans
                && self.feed.offer(input.payload.clone(), input.end_lsn)
            {
                self.gate.derive_offered(input.end_lsn);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{RecordKind, WalConfig, WalMetrics};

    fn wal(dir: &std::path::Path) -> Wal {
        let metrics = WalMetrics::register(&prometheus::Registry::new()).unwrap();
        Wal::open(WalConfig::new(dir), metrics).unwrap().0
    }

    /// Logs never reach the graph, so they must not wait for it: the WAL is
    /// trimmed to the index's position whenever every span record handed to
    /// the graph is saved, and held at the graph's position otherwise.
    #[test]
    fn only_unsaved_span_records_hold_the_wal_back() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut ends = Vec::new();
        for i in 0..6u8 {
            ends.push(
                rt.block_on(wal.append(RecordKind::Logs, vec![i; 100]))
                    .unwrap(),
            );
        }
        let gate = CheckpointGate::new(wal.clone());

        // Logs only: the graph never saved anything past the start.
        gate.index_committed(ends[2]).unwrap();
        assert_eq!(wal.checkpoint_lsn(), ends[2]);

        // A span record at ends[3], not saved yet: held at the graph's.
        gate.derive_offered(ends[3]);
        gate.index_committed(ends[4]).unwrap();
        assert_eq!(wal.checkpoint_lsn(), ends[2]);
        gate.derived_saved(ends[3]);
        assert_eq!(
            wal.checkpoint_lsn(),
            ends[4],
            "saved: the index leads again"
        );

        // More logs after the last span: not held back.
        gate.index_committed(ends[5]).unwrap();
        assert_eq!(wal.checkpoint_lsn(), ends[5]);
    }
}
