//! Data-plane cross-check: when spans or logs with a resource
//! `service.instance.id` last arrived. Fed by the ingest hook
//! ([`crate::ingest::TrafficObserver`]); read by snapshots, so an alert can
//! tell "heartbeats lost, still serving traffic" from "dead".
//!
//! Bounded: at most `capacity` ids; when full, new ids are not tracked
//! (counted in `skein_registry_traffic_overflow_total`), known ones still
//! update. Entries older than the expired-instance retention are pruned.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::clock::Clock;
use super::metrics::RegistryMetrics;
use crate::ingest::TrafficObserver;

pub struct Traffic {
    seen: Mutex<HashMap<Box<str>, u64>>,
    capacity: usize,
    clock: Arc<dyn Clock>,
    metrics: RegistryMetrics,
}

impl Traffic {
    pub fn new(capacity: usize, clock: Arc<dyn Clock>, metrics: RegistryMetrics) -> Self {
        Traffic {
            seen: Mutex::new(HashMap::new()),
            capacity,
            clock,
            metrics,
        }
    }

    pub fn last_seen(&self, instance: &str) -> Option<u64> {
        self.seen.lock().get(instance).copied()
    }

    /// Run `f` with the table locked (one lock for a whole snapshot).
    pub fn with<R>(&self, f: impl FnOnce(&HashMap<Box<str>, u64>) -> R) -> R {
        f(&self.seen.lock())
    }

    /// Forget ids not seen since `before`.
    pub fn prune(&self, before: u64) {
        let mut seen = self.seen.lock();
        seen.retain(|_, &mut at| at >= before);
        self.metrics.traffic_tracked.set(seen.len() as i64);
    }
}

impl TrafficObserver for Traffic {
    fn seen(&self, instance_ids: &[&str]) {
        let now = self.clock.now_ms();
        let mut seen = self.seen.lock();
        for id in instance_ids {
            if let Some(at) = seen.get_mut(*id) {
                *at = now;
            } else if seen.len() < self.capacity {
                seen.insert(Box::from(*id), now);
            } else {
                self.metrics.traffic_overflow.inc();
            }
        }
        self.metrics.traffic_tracked.set(seen.len() as i64);
    }
}
