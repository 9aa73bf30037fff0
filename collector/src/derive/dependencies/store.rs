//! Per-minute edge buckets: calls, errors and a latency sketch per
//! (caller, callee, connection type) and minute, the queries over a window,
//! and which hours changed since the last save.
//!
//! Each loaded or saved hour remembers the WAL position its file covers; an
//! edge from a record at or below it is already in the file and is skipped,
//! so replaying the WAL after a crash never counts a call twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::pairing::ConnType;
use super::sketch::Sketch;
use crate::index::Lsn;

pub const MINUTE_NS: u64 = 60_000_000_000;
pub const MINUTES_PER_HOUR: u64 = 60;

/// An edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    pub parent: Arc<str>,
    pub child: Arc<str>,
    pub conn: ConnType,
}

/// What one edge did in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeStats {
    pub calls: u64,
    pub errors: u64,
    pub latency: Sketch,
}

impl EdgeStats {
    fn merge(&mut self, other: &EdgeStats) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
    }
}

/// An edge over a window, as the API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSummary {
    pub parent: Arc<str>,
    pub child: Arc<str>,
    pub conn: ConnType,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Outcome of [`Store::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Added,
    /// Already in the file of that hour (WAL replay).
    AlreadySaved,
    /// The minute already has `max_edges` edges.
    Overflow,
}

pub type Minute = u64;
pub type Hour = u64;
pub type Minutes = BTreeMap<Minute, HashMap<EdgeKey, EdgeStats>>;

pub fn hour_of(minute: Minute) -> Hour {
    minute / MINUTES_PER_HOUR
}

/// The buckets.
#[derive(Debug, Default)]
pub struct Store {
    pub(super) minutes: Minutes,
    /// WAL position covered by each hour's file.
    pub(super) saved_lsn: HashMap<Hour, Lsn>,
    pub(super) dirty: BTreeSet<Hour>,
    max_edges: usize,
}

impl Store {
    pub fn new(max_edges: usize) -> Self {
        Store {
            max_edges: max_edges.max(1),
            ..Default::default()
        }
    }

    /// Count one call in `minute`, seen in the WAL record ending at `lsn`.
    pub fn record(
        &mut self,
        key: EdgeKey,
        minute: Minute,
        latency_ns: u64,
        failed: bool,
        lsn: Lsn,
    ) -> Recorded {
        let hour = hour_of(minute);
        if self.saved_lsn.get(&hour).is_some_and(|&saved| lsn <= saved) {
            return Recorded::AlreadySaved;
        }
        let edges = self.minutes.entry(minute).or_default();
        let len = edges.len();
        let stats = match edges.get_mut(&key) {
            Some(s) => s,
            None if len >= self.max_edges => return Recorded::Overflow,
            None => edges.entry(key).or_default(),
        };
        stats.calls += 1;
        stats.errors += u64::from(failed);
        stats.latency.add(latency_ns);
        self.dirty.insert(hour);
        Recorded::Added
    }

    /// Every edge active in the minutes overlapping `[start_ns, end_ns]`.
    pub fn window(&self, start_ns: u64, end_ns: u64) -> Vec<EdgeSummary> {
        let mut merged: BTreeMap<&EdgeKey, EdgeStats> = BTreeMap::new();
        for edges in self.range(start_ns, end_ns) {
            for (k, s) in edges {
                merged.entry(k).or_default().merge(s);
            }
        }
        merged
            .into_iter()
            .map(|(k, s)| EdgeSummary {
                parent: k.parent.clone(),
                child: k.child.clone(),
                conn: k.conn,
                calls: s.calls,
                errors: s.errors,
                p50_ms: s.latency.quantile_ns(0.5).map(|ns| ns / 1e6),
                p99_ms: s.latency.quantile_ns(0.99).map(|ns| ns / 1e6),
            })
            .collect()
    }

    fn range(
        &self,
        start_ns: u64,
        end_ns: u64,
    ) -> impl Iterator<Item = &HashMap<EdgeKey, EdgeStats>> {
        let (from, to) = (start_ns / MINUTE_NS, end_ns / MINUTE_NS);
        // Half-open and never reversed (BTreeMap::range panics on that).
        let end = to.saturating_add(1).max(from);
        self.minutes.range(from..end).map(|(_, edges)| edges)
    }

    /// Drop minutes before `oldest`; returns the hours that became empty.
    pub fn drop_before(&mut self, oldest: Minute) -> Vec<Hour> {
        let kept = self.minutes.split_off(&oldest);
        let dropped = std::mem::replace(&mut self.minutes, kept);
        let mut hours: BTreeSet<Hour> = dropped.keys().map(|&m| hour_of(m)).collect();
        hours.extend(
            self.saved_lsn
                .keys()
                .copied()
                .filter(|&h| (h + 1) * MINUTES_PER_HOUR <= oldest),
        );
        let gone: Vec<Hour> = hours
            .into_iter()
            .filter(|&h| {
                !self
                    .minutes
                    .range(h * MINUTES_PER_HOUR..(h + 1) * MINUTES_PER_HOUR)
                    .any(|_| true)
            })
            .collect();
        for h in &gone {
            self.saved_lsn.remove(h);
            self.dirty.remove(h);
        }
        // Hours that lost some minutes but keep others are rewritten.
        for &m in dropped.keys() {
            let h = hour_of(m);
            if !gone.contains(&h) {
                self.dirty.insert(h);
            }
        }
        gone
    }

    /// The minutes of `hour`, for saving.
    pub fn hour_minutes(
        &self,
        hour: Hour,
    ) -> impl Iterator<Item = (&Minute, &HashMap<EdgeKey, EdgeStats>)> {
        self.minutes
            .range(hour * MINUTES_PER_HOUR..(hour + 1) * MINUTES_PER_HOUR)
    }

    /// Insert a loaded hour (its minutes and the WAL position it covers).
    pub fn load_hour(&mut self, hour: Hour, lsn: Lsn, minutes: Minutes) {
        self.saved_lsn.insert(hour, lsn);
        for (m, edges) in minutes {
            let slot = self.minutes.entry(m).or_default();
            for (k, s) in edges {
                slot.entry(k).or_default().merge(&s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str, c: &str) -> EdgeKey {
        EdgeKey {
            parent: p.into(),
            child: c.into(),
            conn: ConnType::Direct,
        }
    }

    #[test]
    fn window_merges_minutes_and_skips_saved_records() {
        let mut s = Store::new(2);
        assert_eq!(
            s.record(key("a", "b"), 10, 1_000_000, false, 5),
            Recorded::Added
        );
        assert_eq!(
            s.record(key("a", "b"), 11, 3_000_000, true, 6),
            Recorded::Added
        );
        assert_eq!(
            s.record(key("a", "c"), 11, 1_000_000, false, 6),
            Recorded::Added
        );
        assert_eq!(s.record(key("x", "y"), 11, 1, false, 6), Recorded::Overflow);
        let all = s.window(10 * MINUTE_NS, 11 * MINUTE_NS + 1);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].calls, all[0].errors), (2, 1));
        let p99 = all[0].p99_ms.unwrap();
        assert!((p99 - 3.0).abs() < 0.2, "{p99}");
        assert_eq!(s.window(11 * MINUTE_NS, 12 * MINUTE_NS)[0].calls, 1);
        assert!(s.window(12 * MINUTE_NS, 20 * MINUTE_NS).is_empty());
        assert!(s.window(20 * MINUTE_NS, 10 * MINUTE_NS).is_empty());

        s.saved_lsn.insert(0, 6);
        assert_eq!(
            s.record(key("a", "b"), 12, 1, false, 6),
            Recorded::AlreadySaved
        );
        assert_eq!(s.record(key("a", "b"), 12, 1, false, 7), Recorded::Added);
    }

    #[test]
    fn drop_before_reports_emptied_hours() {
        let mut s = Store::new(10);
        s.record(key("a", "b"), 59, 1, false, 1);
        s.record(key("a", "b"), 61, 1, false, 1);
        s.record(key("a", "b"), 62, 1, false, 1);
        s.dirty.clear();
        assert_eq!(s.drop_before(62), vec![0]);
        assert_eq!(s.dirty.iter().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.window(0, 100 * MINUTE_NS)[0].calls, 1);
    }
}
