//! The bounded hand-off from the indexer thread to the derive worker: WAL
//! span records, bounded by their total bytes. When full, a new record is
//! dropped and counted (`skein_derive_queue_dropped_total`); the indexer
//! never waits on it. Depth: `skein_derive_queue_bytes`,
//! `skein_derive_queue_records`.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::metrics::DeriveMetrics;
use crate::index::Lsn;

/// One WAL record of spans.
#[derive(Debug)]
pub struct Record {
    /// Protobuf `ExportTraceServiceRequest`.
    pub payload: Vec<u8>,
    pub end_lsn: Lsn,
}

/// What [`Queue::pop`] found.
#[derive(Debug)]
pub enum Pop {
    Record(Record),
    /// Nothing arrived within the timeout.
    Empty,
    /// Closed and drained.
    Closed,
}

#[derive(Default)]
struct State {
    records: VecDeque<Record>,
    bytes: usize,
    closed: bool,
}

pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    max_bytes: usize,
    metrics: DeriveMetrics,
}

impl Queue {
    pub fn new(max_bytes: usize, metrics: DeriveMetrics) -> Self {
        Queue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            max_bytes,
            metrics,
        }
    }

    /// Enqueue without waiting; `false` (counted) when full or closed.
    pub fn push(&self, record: Record) -> bool {
        let mut s = self.state.lock();
        let len = record.payload.len();
        if s.closed || s.bytes + len > self.max_bytes {
            drop(s);
            self.metrics.queue_dropped.inc();
            return false;
        }
        s.bytes += len;
        s.records.push_back(record);
        self.publish(&s);
        drop(s);
        self.ready.notify_one();
        true
    }

    /// The oldest record, waiting up to `timeout` for one.
    pub fn pop(&self, timeout: Duration) -> Pop {
        let mut s = self.state.lock();
        if s.records.is_empty() && !s.closed {
            self.ready.wait_for(&mut s, timeout);
        }
        match s.records.pop_front() {
            Some(r) => {
                s.bytes -= r.payload.len();
                self.publish(&s);
                Pop::Record(r)
            }
            None if s.closed => Pop::Closed,
            None => Pop::Empty,
        }
    }

    /// Refuse new records; `pop` returns what is queued, then `Closed`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }

    fn publish(&self, s: &State) {
        self.metrics.queue_bytes.set(s.bytes as i64);
        self.metrics.queue_records.set(s.records.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;

    #[test]
    fn full_queue_drops_and_counts_then_drains_after_close() {
        let m = DeriveMetrics::register(&Registry::new()).unwrap();
        let q = Queue::new(10, m.clone());
        let rec = |n: usize, lsn| Record {
            payload: vec![0; n],
            end_lsn: lsn,
        };
        assert!(q.push(rec(6, 1)));
        assert!(!q.push(rec(6, 2)), "over the byte bound");
        assert!(q.push(rec(4, 3)));
        assert_eq!((m.queue_bytes.get(), m.queue_records.get()), (10, 2));
        assert_eq!(m.queue_dropped.get(), 1);
        q.close();
        assert!(!q.push(rec(1, 4)));
        assert!(matches!(q.pop(Duration::ZERO), Pop::Record(r) if r.end_lsn == 1));
        assert!(matches!(q.pop(Duration::ZERO), Pop::Record(r) if r.end_lsn == 3));
        assert!(matches!(q.pop(Duration::ZERO), Pop::Closed));
        assert_eq!(m.queue_bytes.get(), 0);
    }
}
