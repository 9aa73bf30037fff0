//! Edge extraction: pairs a caller span with the callee span whose parent it
//! is, across requests and agents, with a bounded pending store and expiry
//! (the approach of Tempo's service-graph processor).
//!
//! A span is kept as a possible **parent** when it is a `CLIENT`/`PRODUCER`
//! span, or (while the store is less than half full) a `SERVER`/`CONSUMER`
//! span, so that server → server links without client spans (Jaeger's
//! "parent in another service" rule) are found too. A `SERVER`/`CONSUMER`
//! span is a **child**; it waits in the store when its parent has not
//! arrived yet. A pair is an edge when the parent is a client/producer span
//! (any services, like Tempo) or when the two services differ.
//!
//! After `wait` an entry expires: an unmatched client span with a peer
//! attribute (`peer.service`, `server.address`, … see [`super::super::wire`])
//! becomes an edge to that **virtual node** (`connection_type`
//! `virtual_node`, or `database` when `db.*` attributes are set); other
//! leftovers are counted as unpaired. When the store is full, new entries
//! are dropped and counted. Time comes from the caller (milliseconds), so
//! tests drive it explicitly.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use crate::derive::wire::kind;
use crate::index::Lsn;

/// How a call crossed between client and server (Tempo's `connection_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnType {
    /// A direct request (label value `""`).
    Direct,
    /// Producer → consumer through a messaging system.
    Messaging,
    /// A client span to a database nobody traces.
    Database,
    /// A client span to an uninstrumented peer.
    VirtualNode,
}

impl ConnType {
    pub fn label(self) -> &'static str {
        match self {
            ConnType::Direct => "",
            ConnType::Messaging => "messaging_system",
            ConnType::Database => "database",
            ConnType::VirtualNode => "virtual_node",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        [
            ConnType::Direct,
            ConnType::Messaging,
            ConnType::Database,
            ConnType::VirtualNode,
        ]
        .into_iter()
        .find(|c| c.label() == label)
    }
}

/// What the pairing needs of one span. `service` and `peer` are ids from the
/// caller's interner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub service: u32,
    pub kind: i32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub error: bool,
    pub peer: Option<u32>,
    pub database: bool,
    /// End LSN of the WAL record the span came in.
    pub lsn: Lsn,
}

impl Side {
    fn is_caller(&self) -> bool {
        matches!(self.kind, kind::CLIENT | kind::PRODUCER)
    }

    fn is_callee(&self) -> bool {
        matches!(self.kind, kind::SERVER | kind::CONSUMER)
    }
}

/// One call from `client` to `server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub client: u32,
    pub server: u32,
    pub conn: ConnType,
    /// Start of the calling span: the edge's time bucket.
    pub start_ns: u64,
    /// Duration of the client span, when there is one.
    pub client_ns: Option<u64>,
    /// Duration of the server span, when there is one.
    pub server_ns: Option<u64>,
    pub failed: bool,
    /// The WAL record that completed the edge (the later of the two sides;
    /// for a virtual node, the client span's record).
    pub lsn: Lsn,
}

impl Edge {
    /// The latency of the call as the caller saw it, else as the callee did.
    pub fn latency_ns(&self) -> u64 {
        self.client_ns.or(self.server_ns).unwrap_or(0)
    }
}

/// Counters of what the store could not pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairStats {
    /// Entries refused because the store was full.
    pub dropped: u64,
    /// Client spans that expired with neither a callee nor a peer attribute.
    pub unpaired_client: u64,
    /// Server spans whose parent never arrived (or was not kept).
    pub unpaired_server: u64,
}

type Key = ([u8; 16], [u8; 8]);

#[derive(Debug)]
struct Slot {
    parent: Option<Side>,
    /// The parent (a client span) already produced an edge.
    matched: bool,
    /// Children whose parent has not arrived.
    children: Vec<Side>,
    born_ms: u64,
}

/// The pending store.
#[derive(Debug)]
pub struct Pairer {
    slots: HashMap<Key, Slot>,
    fifo: VecDeque<(u64, Key)>,
    pending: usize,
    cap: usize,
    wait_ms: u64,
    pub stats: PairStats,
}

impl Pairer {
    /// A store holding at most `cap` spans for `wait_ms` each.
    pub fn new(cap: usize, wait_ms: u64) -> Self {
        Pairer {
            slots: HashMap::new(),
            fifo: VecDeque::new(),
            pending: 0,
            cap: cap.max(2),
            wait_ms,
            stats: PairStats::default(),
        }
    }

    /// Spans currently waiting for a partner.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Add one span; completed edges are pushed to `out`. Spans with ids of
    /// the wrong length are ignored (ingest rejects them anyway).
    pub fn add(
        &mut self,
        now_ms: u64,
        trace_id: &[u8],
        span_id: &[u8],
        parent_span_id: &[u8],
        side: Side,
        out: &mut Vec<Edge>,
    ) {
        let Ok(trace) = <[u8; 16]>::try_from(trace_id) else {
            return;
        };
        if side.is_callee() {
            if let Ok(parent) = <[u8; 8]>::try_from(parent_span_id) {
                if parent != [0; 8] {
                    self.add_child(now_ms, (trace, parent), side, out);
                }
            }
        }
        let keep_as_parent = side.is_caller() || (side.is_callee() && self.pending < self.cap / 2);
        if keep_as_parent {
            if let Ok(id) = <[u8; 8]>::try_from(span_id) {
                self.add_parent(now_ms, (trace, id), side, out);
            }
        }
    }

    fn add_child(&mut self, now_ms: u64, key: Key, child: Side, out: &mut Vec<Edge>) {
        if let Some(slot) = self.slots.get_mut(&key) {
            if let Some(parent) = slot.parent {
                if let Some(edge) = pair(&parent, &child) {
                    out.push(edge);
                    if parent.is_caller() {
                        slot.matched = true;
                    }
                }
                return;
            }
            if self.pending >= self.cap {
                self.stats.dropped += 1;
                return;
            }
            slot.children.push(child);
            self.pending += 1;
            return;
        }
        if self.pending >= self.cap {
            self.stats.dropped += 1;
            return;
        }
        self.slots.insert(
            key,
            Slot {
                parent: None,
                matched: false,
                children: vec![child],
                born_ms: now_ms,
            },
        );
        self.pending += 1;
        self.push_fifo(now_ms, key, out);
    }

    fn add_parent(&mut self, now_ms: u64, key: Key, parent: Side, out: &mut Vec<Edge>) {
        match self.slots.entry(key) {
            Entry::Occupied(mut e) => {
                let slot = e.get_mut();
                if slot.parent.is_some() {
                    return; // a duplicate span (a retry): count it once
                }
                let waiting = std::mem::take(&mut slot.children);
                self.pending -= waiting.len();
                let mut matched = false;
                for child in &waiting {
                    if let Some(edge) = pair(&parent, child) {
                        out.push(edge);
                        matched = true;
                    }
                }
                if matched && parent.is_caller() {
                    e.remove();
                    return;
                }
                let slot = e.into_mut();
                slot.parent = Some(parent);
                slot.matched = matched;
                slot.born_ms = now_ms;
            }
            Entry::Vacant(e) => {
                if self.pending >= self.cap {
                    self.stats.dropped += 1;
                    return;
                }
                e.insert(Slot {
                    parent: Some(parent),
                    matched: false,
                    children: Vec::new(),
                    born_ms: now_ms,
                });
            }
        }
        self.pending += 1;
        self.push_fifo(now_ms, key, out);
    }

    fn push_fifo(&mut self, now_ms: u64, key: Key, out: &mut Vec<Edge>) {
        self.fifo.push_back((now_ms, key));
        // Stale entries (slots matched or refreshed) are skipped on expiry;
        // should they pile up, expire the oldest early.
        while self.fifo.len() > 2 * self.cap {
            if let Some((born, key)) = self.fifo.pop_front() {
                self.expire_slot(born, key, out);
            }
        }
    }

    /// Expire entries older than `wait`: virtual-node edges go to `out`.
    pub fn expire(&mut self, now_ms: u64, out: &mut Vec<Edge>) {
        while let Some(&(born, key)) = self.fifo.front() {
            if born.saturating_add(self.wait_ms) > now_ms {
                break;
            }
            self.fifo.pop_front();
            self.expire_slot(born, key, out);
        }
    }

    fn expire_slot(&mut self, born: u64, key: Key, out: &mut Vec<Edge>) {
        let Entry::Occupied(e) = self.slots.entry(key) else {
            return;
        };
        if e.get().born_ms != born {
            return; // refreshed since; a later fifo entry owns it
        }
        let slot = e.remove();
        self.pending -= slot.children.len() + usize::from(slot.parent.is_some());
        self.stats.unpaired_server += slot.children.len() as u64;
        let Some(parent) = slot.parent else {
            return;
        };
        if !parent.is_caller() || slot.matched {
            return;
        }
        match parent.peer {
            Some(peer) => out.push(Edge {
                client: parent.service,
                server: peer,
                conn: if parent.database {
                    ConnType::Database
                } else {
                    ConnType::VirtualNode
                },
                start_ns: parent.start_ns,
                client_ns: Some(parent.duration_ns),
                server_ns: None,
                failed: parent.error,
                lsn: parent.lsn,
            }),
            None => self.stats.unpaired_client += 1,
        }
    }
}

/// The edge between `parent` and its child span `child`, if it is a call.
fn pair(parent: &Side, child: &Side) -> Option<Edge> {
    let conn = if parent.is_caller() {
        if parent.kind == kind::PRODUCER && child.kind == kind::CONSUMER {
            ConnType::Messaging
        } else {
            ConnType::Direct
        }
    } else if parent.service != child.service {
        ConnType::Direct
    } else {
        return None;
    };
    let caller = parent.is_caller();
    Some(Edge {
        client: parent.service,
        server: child.service,
        conn,
        start_ns: parent.start_ns,
        client_ns: caller.then_some(parent.duration_ns),
        server_ns: Some(child.duration_ns),
        failed: child.error || (caller && parent.error),
        lsn: parent.lsn.max(child.lsn),
    })
}
