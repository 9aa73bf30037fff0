//! The in-memory set of services and their operations (with span kinds),
//! updated while indexing and rebuilt from the `svc_op` term dictionaries at
//! open and after retention. Bounded: past `cap` entries new pairs are counted
//! in `skein_index_operations_overflow_total` and not remembered.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus::IntCounter;
use tantivy::schema::Field;

use super::partition::Partition;
use super::IndexError;
use crate::query::{Operation, SpanKind};

pub(crate) const DEFAULT_CAP: usize = 100_000;

const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

fn kind_bit(kind: SpanKind) -> u8 {
    1 << (KINDS.iter().position(|k| *k == kind).unwrap_or(0) as u8)
}

#[derive(Default)]
struct Inner {
    /// service → operation → bit set of kinds.
    services: BTreeMap<String, BTreeMap<String, u8>>,
    /// Number of (service, operation, kind) entries.
    entries: usize,
}

impl Inner {
    fn contains(&self, service: &str, kind: SpanKind, op: &str) -> bool {
        self.services
            .get(service)
            .and_then(|ops| ops.get(op))
            .is_some_and(|bits| bits & kind_bit(kind) != 0)
    }

    /// Insert; false when the set is full.
    fn insert(&mut self, service: &str, kind: SpanKind, op: &str, cap: usize) -> bool {
        if self.contains(service, kind, op) {
            return true;
        }
        if self.entries >= cap {
            return false;
        }
        let ops = self.services.entry(service.to_string()).or_default();
        let bits = ops.entry(op.to_string()).or_default();
        *bits |= kind_bit(kind);
        self.entries += 1;
        true
    }
}

pub(crate) struct Catalog {
    inner: RwLock<Inner>,
    cap: usize,
    overflow: IntCounter,
}

impl Catalog {
    pub fn new(cap: usize, overflow: IntCounter) -> Self {
        Catalog {
            inner: RwLock::new(Inner::default()),
            cap,
            overflow,
        }
    }

    /// Remember that `service` has operation `op` of `kind` (cheap when known).
    pub fn observe(&self, service: &str, kind: SpanKind, op: &str) {
        if self.inner.read().contains(service, kind, op) {
            return;
        }
        if !self.inner.write().insert(service, kind, op, self.cap) {
            self.overflow.inc();
        }
    }

    pub fn services(&self) -> Vec<String> {
        self.inner.read().services.keys().cloned().collect()
    }

    pub fn operations(&self, service: &str, kind: Option<SpanKind>) -> Vec<Operation> {
        let inner = self.inner.read();
        let Some(ops) = inner.services.get(service) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, bits) in ops {
            if name.is_empty() {
                continue;
            }
            for k in KINDS {
                if bits & kind_bit(k) != 0 && kind.is_none_or(|want| want == k) {
                    out.push(Operation {
                        name: name.clone(),
                        kind: k,
                    });
                }
            }
        }
        out.sort();
        out
    }

    /// Replace the set with what the committed `svc_op` terms of `parts` say.
    pub fn rebuild(&self, parts: &[Arc<Partition>], field: Field) -> Result<(), IndexError> {
        let mut fresh = Inner::default();
        let mut overflow = 0u64;
        for part in parts {
            let searcher = part.searcher();
            for seg in searcher.segment_readers() {
                let inverted = seg.inverted_index(field)?;
                let mut stream = inverted
                    .terms()
                    .stream()
                    .map_err(|e| IndexError::io(&part.dir, e))?;
                while stream.advance() {
                    let Some((service, kind, op)) = split_svc_op(stream.key()) else {
                        continue;
                    };
                    if !fresh.insert(service, kind, op, self.cap) {
                        overflow += 1;
                    }
                }
            }
        }
        if overflow > 0 {
            self.overflow.inc_by(overflow);
        }
        // Called at open and right after a commit, so every observed pair
        // is committed and the fresh set is complete.
        let mut inner = self.inner.write();
        *inner = fresh;
        Ok(())
    }
}

/// The `svc_op` term: `service \0 kind \0 operation`.
pub(crate) fn svc_op_term(out: &mut String, service: &str, kind: SpanKind, op: &str) {
    out.clear();
    out.push_str(service);
    out.push('\0');
    out.push_str(kind.as_str());
    out.push('\0');
    out.push_str(op);
}

fn split_svc_op(key: &[u8]) -> Option<(&str, SpanKind, &str)> {
    let s = std::str::from_utf8(key).ok()?;
    let mut it = s.splitn(3, '\0');
    let service = it.next()?;
    let kind = SpanKind::parse(it.next()?)?;
    let op = it.next()?;
    Some((service, kind, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_list_and_overflow() {
        let overflow = IntCounter::new("o", "o").unwrap();
        let c = Catalog::new(2, overflow.clone());
        c.observe("a", SpanKind::Server, "GET /");
        c.observe("a", SpanKind::Client, "GET /");
        c.observe("a", SpanKind::Server, "GET /");
        c.observe("b", SpanKind::Server, "x");
        assert_eq!(c.services(), vec!["a".to_string()]);
        assert_eq!(overflow.get(), 1);
        let ops = c.operations("a", Some(SpanKind::Client));
        assert_eq!(ops.len(), 1);
        assert_eq!(c.operations("a", None).len(), 2);
    }

    #[test]
    fn svc_op_round_trip() {
        let mut s = String::new();
        svc_op_term(&mut s, "svc", SpanKind::Server, "op\0x");
        assert_eq!(
            split_svc_op(s.as_bytes()),
            Some(("svc", SpanKind::Server, "op\0x"))
        );
    }
}
