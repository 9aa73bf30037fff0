//! The service dependency graph, computed at ingest time: no batch job.
//!
//! - `pairing.rs`: caller span ↔ callee span pairs across requests, with a
//!   bounded pending store and expiry; virtual nodes for uninstrumented peers.
//! - `store.rs`: per-minute buckets of calls, errors and latency per edge.
//! - `sketch.rs`: the mergeable latency sketch behind p50/p99.
//! - `persist.rs`: one file per hour under `<data-dir>/derived/dependencies/`.
//!
//! [`DependencyGraph`] is the shared handle: the derive worker writes through
//! it, the HTTP API and other modules (alerts: "who calls this service")
//! read through it. It owns no threads and never touches the WAL or index.

pub mod pairing;
pub mod persist;
pub mod sketch;
pub mod store;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

pub use pairing::{ConnType, Edge};
use store::{hour_of, Store, MINUTE_NS};
pub use store::{EdgeKey, EdgeSummary, Recorded};

use crate::index::{Clock, Lsn};

/// Edges dated further into the future than this are put in the current
/// minute instead (a client with a broken clock must not create far-away
/// buckets).
const MAX_FUTURE: Duration = Duration::from_secs(600);

/// Why the graph could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("encoding the dependency graph: {0}")]
    Encode(String),
}

/// A service calling the one asked about, over a recent window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Caller {
    pub service: String,
    pub calls: u64,
    pub errors: u64,
    pub calls_per_minute: f64,
}

/// Shared handle on the graph. Cheap to clone.
#[derive(Clone)]
pub struct DependencyGraph {
    inner: Arc<Inner>,
}

struct Inner {
    store: RwLock<Store>,
    dir: PathBuf,
    retention: Duration,
    clock: Arc<dyn Clock>,
}

impl DependencyGraph {
    /// Open the graph in `dir` (created if missing), dropping buckets older
    /// than `retention`; at most `max_edges` edges per minute.
    pub fn open(
        dir: PathBuf,
        retention: Duration,
        max_edges: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DependencyError> {
        let mut store = Store::new(max_edges);
        let oldest = oldest_minute(clock.now(), retention);
        persist::load(&dir, hour_of(oldest), &mut store)?;
        store.drop_before(oldest);
        store.dirty.clear();
        Ok(DependencyGraph {
            inner: Arc::new(Inner {
                store: RwLock::new(store),
                dir,
                retention,
                clock,
            }),
        })
    }

    /// Count `edges`; `name` turns interned ids into names. Returns how many
    /// were refused because their minute was full.
    pub fn record(&self, edges: &[Edge], name: impl Fn(u32) -> Arc<str>) -> u64 {
        if edges.is_empty() {
            return 0;
        }
        let now = unix_ns(self.inner.clock.now());
        let oldest = oldest_minute(self.inner.clock.now(), self.inner.retention) * MINUTE_NS;
        let mut overflow = 0;
        let mut store = self.inner.store.write();
        for e in edges {
            let at = if e.start_ns < oldest || e.start_ns > now + MAX_FUTURE.as_nanos() as u64 {
                now
            } else {
                e.start_ns
            };
            let key = EdgeKey {
                parent: name(e.client),
                child: name(e.server),
                conn: e.conn,
            };
            if store.record(key, at / MINUTE_NS, e.latency_ns(), e.failed, e.lsn)
                == Recorded::Overflow
            {
                overflow += 1;
            }
        }
        overflow
    }

    /// Save every changed hour as covering the WAL up to `lsn` (everything
    /// at or below it has been recorded), and apply retention.
    pub fn save(&self, lsn: Lsn) -> Result<(), DependencyError> {
        let oldest = oldest_minute(self.inner.clock.now(), self.inner.retention);
        let (dirty, gone) = {
            let mut store = self.inner.store.write();
            let gone = store.drop_before(oldest);
            let dirty = std::mem::take(&mut store.dirty);
            for &h in &dirty {
                store.saved_lsn.insert(h, lsn);
            }
            (dirty, gone)
        };
        for h in gone {
            persist::remove_hour(&self.inner.dir, h)?;
        }
        let result = {
            let store = self.inner.store.read();
            dirty
                .iter()
                .try_for_each(|&h| persist::save_hour(&self.inner.dir, &store, h, lsn))
        };
        if result.is_err() {
            // Written again next time (a rewrite of a saved hour is harmless).
            self.inner.store.write().dirty.extend(dirty);
        }
        result
    }

    /// Every edge with a call in `[start_ns, end_ns]` (minute resolution).
    pub fn window(&self, start_ns: u64, end_ns: u64) -> Vec<EdgeSummary> {
        self.inner.store.read().window(start_ns, end_ns)
    }

    /// The services that called `service` in the last `window` (at least
    /// one minute, whole minutes), busiest first, with calls per minute.
    pub fn callers(&self, service: &str, window: Duration) -> Vec<Caller> {
        let minutes = window.as_secs().div_ceil(60).max(1);
        let now = unix_ns(self.inner.clock.now());
        let start = (now / MINUTE_NS).saturating_sub(minutes - 1) * MINUTE_NS;
        let mut callers: Vec<Caller> = Vec::new();
        for e in self.window(start, now) {
            if &*e.child != service {
                continue;
            }
            match callers.iter_mut().find(|c| c.service == *e.parent) {
                Some(c) => {
                    c.calls += e.calls;
                    c.errors += e.errors;
                }
                None => callers.push(Caller {
                    service: e.parent.to_string(),
                    calls: e.calls,
                    errors: e.errors,
                    calls_per_minute: 0.0,
                }),
            }
        }
        for c in &mut callers {
            c.calls_per_minute = c.calls as f64 / minutes as f64;
        }
        callers.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.service.cmp(&b.service)));
        callers
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn oldest_minute(now: SystemTime, retention: Duration) -> u64 {
    unix_ns(now).saturating_sub(retention.as_nanos() as u64) / MINUTE_NS
}
