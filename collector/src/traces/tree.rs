//! The call tree of one trace, from parent span ids.
//!
//! Rules:
//! - a span without a parent id (empty or all zeroes) is a root; a trace may
//!   have several;
//! - a span whose parent never arrived is an **orphan**: it hangs under a
//!   synthetic placeholder node ("missing span") whose span id is the missing
//!   parent's, so nothing is dropped or silently promoted to a root; orphans
//!   of the same missing parent share one placeholder, which is a root;
//! - duplicate span ids (exporter retries) become one node: identical copies
//!   silently, differing copies keep the one that ends last and say so in a
//!   warning;
//! - parent links that form a cycle (bad instrumentation) are cut where the
//!   cycle is found, and that span becomes a root with a warning;
//! - children and roots are ordered by start time, then span id.
//!
//! Owns only the structure; times are adjusted by [`super::skew`].

use std::collections::HashMap;

use crate::query::{SpanKind, SpanRecord, TraceId};

/// An 8-byte span id.
pub type SpanId = [u8; 8];

/// The operation name shown for a placeholder.
pub const MISSING_SPAN_NAME: &str = "missing span";

/// One node: a received span, or a placeholder for a parent that never arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span_id: SpanId,
    /// The parent id as sent (`None` for roots). For an orphan it is the
    /// missing span's id, which is also its placeholder's `span_id`.
    pub parent_span_id: Option<SpanId>,
    /// Index of the parent node in [`TraceTree::nodes`].
    pub parent: Option<usize>,
    /// Indexes of the child nodes, by start time.
    pub children: Vec<usize>,
    /// The span; `None` for a placeholder.
    pub record: Option<SpanRecord>,
    /// Start time after clock-skew adjustment (Unix ns).
    pub start_unix_nano: u64,
    /// End time after clock-skew adjustment (Unix ns), never before the start.
    pub end_unix_nano: u64,
    /// How far clock-skew adjustment moved this span (ns, + = later); event
    /// times move by the same amount.
    pub shift_ns: i64,
    /// Human-readable notes (orphan, placeholder, merged copies, skew).
    pub warnings: Vec<String>,
}

impl Node {
    pub fn is_placeholder(&self) -> bool {
        self.record.is_none()
    }

    /// `service.name` of the span; `""` for a placeholder.
    pub fn service(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.service_name())
    }

    /// The span name; [`MISSING_SPAN_NAME`] for a placeholder.
    pub fn name(&self) -> &str {
        self.record
            .as_ref()
            .map_or(MISSING_SPAN_NAME, |r| r.span.name.as_str())
    }

    pub fn kind(&self) -> SpanKind {
        self.record
            .as_ref()
            .map_or(SpanKind::Unspecified, |r| SpanKind::from_otlp(r.span.kind))
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// Whether the span's status is ERROR.
    pub fn is_error(&self) -> bool {
        self.record
            .as_ref()
            .and_then(|r| r.span.status.as_ref())
            .is_some_and(|s| s.code == 2)
    }

    fn placeholder(span_id: SpanId) -> Node {
        Node {
            span_id,
            parent_span_id: None,
            parent: None,
            children: Vec::new(),
            record: None,
            start_unix_nano: 0,
            end_unix_nano: 0,
            shift_ns: 0,
            warnings: Vec::new(),
        }
    }
}

/// The reconstructed trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceTree {
    pub trace_id: TraceId,
    pub nodes: Vec<Node>,
    /// Top-level nodes: spans without a parent and placeholders, by start time.
    pub roots: Vec<usize>,
    /// Received spans whose parent never arrived, by start time.
    pub orphans: Vec<usize>,
    index: HashMap<SpanId, usize>,
}

/// A span id from wire bytes: 8 bytes as they are, shorter ones left-padded
/// with zeroes, longer ones cut to their last 8 (ingest rejects both).
pub fn span_id_of(bytes: &[u8]) -> SpanId {
    let mut id = [0u8; 8];
    let take = bytes.len().min(8);
    id[8 - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    id
}

/// A trace id from wire bytes, padded or cut like [`span_id_of`].
pub fn trace_id_of(bytes: &[u8]) -> TraceId {
    let mut id = [0u8; 16];
    let take = bytes.len().min(16);
    id[16 - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    id
}

/// Lowercase hex of a span id.
pub fn hex_id(id: &SpanId) -> String {
    hex::encode(id)
}

fn is_set(id: &[u8]) -> bool {
    id.iter().any(|&b| b != 0)
}

/// Whether `new` should replace `old` as the shown copy of a duplicated span:
/// the later end wins (a retry after the span ended carries its final
/// state), then the copy with more detail.
fn better(new: &SpanRecord, old: &SpanRecord) -> bool {
    let detail =
        |r: &SpanRecord| r.span.attributes.len() + r.span.events.len() + r.span.links.len();
    (new.span.end_time_unix_nano, detail(new)) > (old.span.end_time_unix_nano, detail(old))
}

impl TraceTree {
    /// Build the tree. `None` when `records` is empty.
    pub fn build(records: Vec<SpanRecord>) -> Option<TraceTree> {
        let trace_id = trace_id_of(&records.first()?.span.trace_id);
        let mut index: HashMap<SpanId, usize> = HashMap::with_capacity(records.len());
        let mut nodes: Vec<Node> = Vec::with_capacity(records.len());
        // Per node: how many copies arrived, and whether any differed.
        let mut copies: Vec<(u32, bool)> = Vec::with_capacity(records.len());
        for record in records {
            let span_id = span_id_of(&record.span.span_id);
            if let Some(&i) = index.get(&span_id) {
                let (count, differ) = &mut copies[i];
                *count += 1;
                if let Some(old) = nodes[i].record.as_mut() {
                    if *old != record {
                        *differ = true;
                        if better(&record, old) {
                            *old = record;
                        }
                    }
                }
                continue;
            }
            index.insert(span_id, nodes.len());
            nodes.push(Node {
                span_id,
                parent_span_id: None,
                parent: None,
                children: Vec::new(),
                record: Some(record),
                start_unix_nano: 0,
                end_unix_nano: 0,
                shift_ns: 0,
                warnings: Vec::new(),
            });
            copies.push((1, false));
        }

        let received = nodes.len();
        let mut roots = Vec::new();
        let mut orphans = Vec::new();
        let mut placeholders: HashMap<SpanId, usize> = HashMap::new();
        for i in 0..received {
            let (count, differ) = copies[i];
            let node = &mut nodes[i];
            let Some(record) = node.record.as_ref() else {
                continue;
            };
            let span = &record.span;
            node.start_unix_nano = span.start_time_unix_nano;
            node.end_unix_nano = span.end_time_unix_nano.max(span.start_time_unix_nano);
            if span.end_time_unix_nano < span.start_time_unix_nano {
                node.warnings
                    .push("end time is before the start time; shown with duration 0".into());
            }
            if differ {
                node.warnings.push(format!(
                    "{count} differing copies of this span were received; showing the one that ends last"
                ));
            }
            let parent_id = is_set(&span.parent_span_id).then(|| span_id_of(&span.parent_span_id));
            node.parent_span_id = parent_id;
            let Some(parent_id) = parent_id else {
                roots.push(i);
                continue;
            };
            if parent_id == node.span_id {
                node.warnings
                    .push("span names itself as its parent; shown as a root".into());
                roots.push(i);
                continue;
            }
            if let Some(&p) = index.get(&parent_id) {
                node.parent = Some(p);
                continue;
            }
            node.warnings.push(format!(
                "parent span {} was never received; shown under a placeholder",
                hex_id(&parent_id)
            ));
            orphans.push(i);
            let p = *placeholders.entry(parent_id).or_insert_with(|| {
                nodes.push(Node::placeholder(parent_id));
                roots.push(nodes.len() - 1);
                nodes.len() - 1
            });
            nodes[i].parent = Some(p);
        }
        for i in 0..nodes.len() {
            if let Some(p) = nodes[i].parent {
                nodes[p].children.push(i);
            }
        }
        for (&id, &p) in &placeholders {
            index.insert(id, p);
            let n = nodes[p].children.len();
            let id = hex_id(&nodes[p].span_id);
            nodes[p].warnings.push(format!(
                "span {id} was never received; this placeholder stands in for it ({n} span(s) name it as their parent)"
            ));
        }

        let mut tree = TraceTree {
            trace_id,
            nodes,
            roots,
            orphans,
            index,
        };
        tree.cut_cycles();
        tree.refresh();
        Some(tree)
    }

    /// The node of a span id (placeholders included).
    pub fn get(&self, span_id: &SpanId) -> Option<usize> {
        self.index.get(span_id).copied()
    }

    /// Number of received spans (placeholders not counted).
    pub fn span_count(&self) -> usize {
        self.nodes.iter().filter(|n| !n.is_placeholder()).count()
    }

    /// Earliest start of any node (Unix ns).
    pub fn start_unix_nano(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.start_unix_nano)
            .min()
            .unwrap_or(0)
    }

    /// Latest end of any node (Unix ns).
    pub fn end_unix_nano(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.end_unix_nano)
            .max()
            .unwrap_or(0)
    }

    /// Node indexes parents-first (depth-first from the roots, children in order).
    pub fn preorder(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<usize> = self.roots.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            out.push(i);
            stack.extend(self.nodes[i].children.iter().rev().copied());
        }
        out
    }

    /// Recompute placeholder times from their children and re-sort children,
    /// roots and orphans by (start, span id). Call after changing times.
    pub(crate) fn refresh(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_placeholder() {
                continue;
            }
            let (start, end) = self.nodes[i]
                .children
                .iter()
                .map(|&c| (self.nodes[c].start_unix_nano, self.nodes[c].end_unix_nano))
                .fold((u64::MAX, 0), |(s, e), (cs, ce)| (s.min(cs), e.max(ce)));
            let node = &mut self.nodes[i];
            node.start_unix_nano = if start == u64::MAX { 0 } else { start };
            node.end_unix_nano = end.max(node.start_unix_nano);
        }
        let keys: Vec<(u64, SpanId)> = self
            .nodes
            .iter()
            .map(|n| (n.start_unix_nano, n.span_id))
            .collect();
        for node in &mut self.nodes {
            node.children.sort_by_key(|&c| keys[c]);
        }
        self.roots.sort_by_key(|&r| keys[r]);
        self.orphans.sort_by_key(|&o| keys[o]);
    }

    /// Spans not reachable from a root sit on a parent cycle: cut each cycle
    /// at the span where the walk up closes it and make that span a root.
    fn cut_cycles(&mut self) {
        let n = self.nodes.len();
        let mut reached = vec![false; n];
        let mut stack: Vec<usize> = self.roots.clone();
        self.mark(&mut reached, &mut stack);
        let mut walk_stamp = vec![usize::MAX; n];
        for start in 0..n {
            if reached[start] {
                continue;
            }
            let mut at = start;
            while walk_stamp[at] != start {
                walk_stamp[at] = start;
                match self.nodes[at].parent {
                    Some(p) => at = p,
                    None => break,
                }
            }
            // `at` is on the cycle (or a root, which cannot be unreached).
            if let Some(p) = self.nodes[at].parent.take() {
                self.nodes[p].children.retain(|&c| c != at);
                self.nodes[at]
                    .warnings
                    .push("parent links form a cycle; shown as a root".into());
            }
            self.roots.push(at);
            stack.push(at);
            self.mark(&mut reached, &mut stack);
        }
    }

    fn mark(&self, reached: &mut [bool], stack: &mut Vec<usize>) {
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut reached[i], true) {
                continue;
            }
            stack.extend(self.nodes[i].children.iter().copied());
        }
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
