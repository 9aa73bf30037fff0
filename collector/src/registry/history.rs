//! The bounded event log behind watch and list-at-revision: the last
//! `capacity` events, one per revision, oldest compacted first.
//!
//! Owns only the ring; it never touches instances or the disk.

use std::collections::VecDeque;

use super::model::SharedEvent;

/// Asked for a revision older than the oldest kept event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// The oldest revision still available.
    pub oldest: u64,
}

/// Contiguous events `front.revision ..= back.revision`.
#[derive(Debug)]
pub struct History {
    events: VecDeque<SharedEvent>,
    capacity: usize,
    /// Revision of the next event to be pushed (everything below it happened).
    next: u64,
}

impl History {
    pub fn new(capacity: usize, next: u64) -> Self {
        History {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            next,
        }
    }

    /// Append the event of revision `self.next`; drops the oldest when full.
    pub fn push(&mut self, event: SharedEvent) {
        debug_assert_eq!(event.revision, self.next, "events are contiguous");
        self.next = event.revision + 1;
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Forget everything and continue at `next` (after a restore without history).
    pub fn reset(&mut self, next: u64) {
        self.events.clear();
        self.next = next;
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The oldest revision a watch may start at.
    pub fn oldest(&self) -> u64 {
        self.events.front().map_or(self.next, |e| e.revision)
    }

    /// Events with `revision >= from`, at most `limit` of them, in order.
    /// `from` above the newest revision gives an empty list.
    pub fn since(&self, from: u64, limit: usize) -> Result<Vec<SharedEvent>, Compacted> {
        let oldest = self.oldest();
        if from < oldest {
            return Err(Compacted { oldest });
        }
        let skip = (from - oldest) as usize;
        Ok(self.events.iter().skip(skip).take(limit).cloned().collect())
    }

    /// Every kept event, oldest first (for snapshots).
    pub fn all(&self) -> impl Iterator<Item = &SharedEvent> {
        self.events.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::*;
    use std::sync::Arc;

    pub(crate) fn ev(rev: u64) -> SharedEvent {
        let view = InstanceView {
            service: "s".into(),
            instance: format!("i{rev}"),
            state: InstanceState::Alive,
            source: Source::Http,
            address: String::new(),
            metadata: Default::default(),
            health: Health::Passing,
            ttl_ms: 1000,
            heartbeat_revision: 1,
            lease_id: rev,
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            registered_at_unix_ms: 0,
            last_heartbeat_unix_ms: 0,
            expires_at_unix_ms: None,
            expired_at_unix_ms: None,
            deregistered_at_unix_ms: None,
            deregister_reason: None,
            restarts_last_hour: 0,
            restarts_total: 0,
            last_traffic_unix_ms: None,
        };
        Arc::new(Event {
            revision: rev,
            kind: EventType::Registered,
            at_unix_ms: 0,
            value: view,
            prev: None,
        })
    }

    #[test]
    fn an_event_is_written_with_its_names_at_the_top_and_read_back_whole() {
        let e = ev(7);
        let json = serde_json::to_value(&*e).expect("serializes");
        assert_eq!(json["service"], "s");
        assert_eq!(json["instance"], "i7");
        assert_eq!(json["type"], "registered");
        assert_eq!(json["value"]["instance"], "i7");
        assert!(json["prev"].is_null());
        let back: Event = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, *e);
    }

    #[test]
    fn ranges_are_inclusive_and_ordered() {
        let mut h = History::new(100, 1);
        for r in 1..=10 {
            h.push(ev(r));
        }
        let revs: Vec<u64> = h.since(4, 3).unwrap().iter().map(|e| e.revision).collect();
        assert_eq!(revs, vec![4, 5, 6]);
        assert!(h.since(11, 10).unwrap().is_empty());
        assert_eq!(h.since(1, 100).unwrap().len(), 10);
    }

    #[test]
    fn compaction_drops_the_oldest_and_reports_it() {
        let mut h = History::new(5, 1);
        for r in 1..=12 {
            h.push(ev(r));
        }
        assert_eq!(h.oldest(), 8);
        assert_eq!(h.since(7, 10), Err(Compacted { oldest: 8 }));
        let revs: Vec<u64> = h.since(8, 10).unwrap().iter().map(|e| e.revision).collect();
        assert_eq!(revs, vec![8, 9, 10, 11, 12]);
    }

    #[test]
    fn empty_history_starts_at_next() {
        let h = History::new(5, 42);
        assert_eq!(h.oldest(), 42);
        assert!(h.since(42, 1).unwrap().is_empty());
        assert_eq!(h.since(41, 1), Err(Compacted { oldest: 42 }));
    }
}
