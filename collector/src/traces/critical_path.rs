//! The critical path: the chain of spans that determined when the trace
//! ended, with each span's self time on it.
//!
//! The walk is the one of Jaeger UI's `computeCriticalPath`: start at the
//! end of the trace, descend into the last-finishing child; from a span
//! without (further) children, the path continues in its parent at the
//! span's start, with the last child that finished by then. Before the walk,
//! children are clipped to their parent's window and children wholly
//! outside it are ignored (as Jaeger's `sanitizeOverFlowingChildren` does).
//! Two deliberate differences: several roots are handled as children of
//! one virtual trace span, and a child that ends exactly when the next one
//! starts (back-to-back calls) stays on the path.
//!
//! Each span on the path is listed once, by start time (ties: parents
//! first), with the total of its stretches on the path as `self_ns`; a span the path passes through without owning a
//! nanosecond (its child covers it exactly) is listed with 0.

use super::tree::{SpanId, TraceTree};

/// One span on the critical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    /// The node in [`TraceTree::nodes`].
    pub node: usize,
    pub span_id: SpanId,
    /// Time on the critical path spent in this span itself (not in a child).
    pub self_ns: u64,
}

/// Compute the critical path of a (skew-adjusted) tree.
pub fn critical_path(tree: &TraceTree) -> Vec<PathEntry> {
    let n = tree.nodes.len();
    if n == 0 {
        return Vec::new();
    }
    // Index `n` is the virtual span covering the whole trace.
    let virtual_node = n;
    let mut start = vec![0u64; n + 1];
    let mut end = vec![0u64; n + 1];
    let mut kept = vec![false; n + 1];
    let mut depth = vec![0usize; n + 1];
    start[virtual_node] = tree.start_unix_nano();
    end[virtual_node] = tree.end_unix_nano();
    kept[virtual_node] = true;
    for i in tree.preorder() {
        let node = &tree.nodes[i];
        let p = node.parent.unwrap_or(virtual_node);
        if !kept[p] || node.start_unix_nano > end[p] || node.end_unix_nano < start[p] {
            continue;
        }
        kept[i] = true;
        depth[i] = if p == virtual_node { 0 } else { depth[p] + 1 };
        start[i] = node.start_unix_nano.max(start[p]);
        end[i] = node.end_unix_nano.min(end[p]).max(start[i]);
    }
    let parent_of = |i: usize| tree.nodes[i].parent.unwrap_or(virtual_node);
    // Children by clipped end, latest first (ties: later start, then id).
    let by_end_desc = |kids: &mut Vec<usize>| {
        kids.retain(|&c| kept[c]);
        kids.sort_by(|&x, &y| {
            (end[y], start[y], tree.nodes[y].span_id).cmp(&(
                end[x],
                start[x],
                tree.nodes[x].span_id,
            ))
        });
    };
    let mut children: Vec<Vec<usize>> = tree.nodes.iter().map(|nd| nd.children.clone()).collect();
    children.push(tree.roots.clone());
    for kids in &mut children {
        by_end_desc(kids);
    }

    let mut cursor = vec![0usize; n + 1];
    let mut self_ns = vec![0u64; n];
    let mut visited: Vec<usize> = Vec::new();
    let mut at = virtual_node;
    let mut bound = end[virtual_node];
    loop {
        let kids = &children[at];
        let mut next = None;
        while cursor[at] < kids.len() {
            let c = kids[cursor[at]];
            cursor[at] += 1;
            if end[c] <= bound {
                next = Some(c);
                break;
            }
        }
        match next {
            Some(c) => {
                if at != virtual_node {
                    take(&mut self_ns, at, end[c], bound);
                }
                visited.push(c);
                at = c;
                bound = end[c];
            }
            None => {
                if at == virtual_node {
                    break;
                }
                take(&mut self_ns, at, start[at], bound);
                bound = start[at];
                at = parent_of(at);
            }
        }
    }

    visited.sort_by_key(|&i| (start[i], depth[i]));
    visited
        .into_iter()
        .map(|i| PathEntry {
            node: i,
            span_id: tree.nodes[i].span_id,
            self_ns: self_ns[i],
        })
        .collect()
}

/// Credit the stretch `[from, to]` of the path to span `i`.
fn take(self_ns: &mut [u64], i: usize, from: u64, to: u64) {
    self_ns[i] += to.saturating_sub(from);
}

#[cfg(test)]
#[path = "critical_path_tests.rs"]
mod tests;
