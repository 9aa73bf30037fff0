//! Trace compare: the span structure of two traces side by side.
//!
//! Each span is keyed by its **path**: the (service, operation) pairs from
//! its root down to itself. Spans with the same path in a trace are counted
//! together (ten `SELECT` calls under one handler are one row with count
//! 10), so two traces of the same request type line up even when span ids,
//! times and fan-out differ. Each row carries both counts and total
//! durations; deltas are `b − a`.
//!
//! Rows come as a tree in depth-first order: `parent` is the index of the
//! parent row, siblings ordered by when they first started (offset from
//! their trace's start, the earlier of the two traces), then by service and
//! operation. Placeholders take part as service `""`, operation
//! `missing span`.

use std::collections::HashMap;

use super::tree::TraceTree;

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSide {
    pub span_count: usize,
    pub duration_ns: u64,
    pub services: Vec<String>,
}

/// One (service, operation) step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStep {
    pub service: String,
    pub operation: String,
}

/// One path and how often / how long it occurs in each trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDiff {
    /// The last step of the path (the earlier ones are the parent rows').
    pub step: PathStep,
    /// Index of the parent row; `None` at the top.
    pub parent: Option<usize>,
    pub depth: usize,
    pub a_count: usize,
    pub b_count: usize,
    /// Sum of the durations of the spans on this path.
    pub a_duration_ns: u64,
    pub b_duration_ns: u64,
}

impl PathDiff {
    pub fn count_delta(&self) -> i64 {
        to_i64(self.b_count as u64) - to_i64(self.a_count as u64)
    }

    pub fn duration_delta_ns(&self) -> i64 {
        to_i64(self.b_duration_ns) - to_i64(self.a_duration_ns)
    }

    /// `added` (only in b), `removed` (only in a), `count_changed`, or `same`.
    pub fn change(&self) -> &'static str {
        match (self.a_count, self.b_count) {
            (0, _) => "added",
            (_, 0) => "removed",
            (a, b) if a != b => "count_changed",
            _ => "same",
        }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The result of comparing trace `a` with trace `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub a: TraceSide,
    pub b: TraceSide,
    pub paths: Vec<PathDiff>,
}

struct Row<'a> {
    service: &'a str,
    operation: &'a str,
    children: Vec<usize>,
    counts: [usize; 2],
    durations: [u64; 2],
    first_offset: u64,
}

/// Compare two (skew-adjusted) trees.
pub fn compare(a: &TraceTree, b: &TraceTree) -> Comparison {
    const TOP: usize = usize::MAX;
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut top: Vec<usize> = Vec::new();
    let mut lookup: HashMap<(usize, &str, &str), usize> = HashMap::new();
    for (side, tree) in [a, b].into_iter().enumerate() {
        let t0 = tree.start_unix_nano();
        let mut row_of = vec![TOP; tree.nodes.len()];
        for i in tree.preorder() {
            let node = &tree.nodes[i];
            let parent_row = node.parent.map_or(TOP, |p| row_of[p]);
            let key = (parent_row, node.service(), node.name());
            let offset = node.start_unix_nano.saturating_sub(t0);
            let r = *lookup.entry(key).or_insert_with(|| {
                rows.push(Row {
                    service: node.service(),
                    operation: node.name(),
                    children: Vec::new(),
                    counts: [0; 2],
                    durations: [0; 2],
                    first_offset: offset,
                });
                let r = rows.len() - 1;
                match parent_row {
                    TOP => top.push(r),
                    p => rows[p].children.push(r),
                }
                r
            });
            let row = &mut rows[r];
            row.counts[side] += 1;
            row.durations[side] = row.durations[side].saturating_add(node.duration_ns());
            row.first_offset = row.first_offset.min(offset);
            row_of[i] = r;
        }
    }

    let order = |rows: &[Row<'_>], list: &mut Vec<usize>| {
        list.sort_by(|&x, &y| {
            let (rx, ry) = (&rows[x], &rows[y]);
            (rx.first_offset, rx.service, rx.operation).cmp(&(
                ry.first_offset,
                ry.service,
                ry.operation,
            ))
        });
    };
    order(&rows, &mut top);
    for r in 0..rows.len() {
        let mut kids = std::mem::take(&mut rows[r].children);
        order(&rows, &mut kids);
        rows[r].children = kids;
    }

    let mut paths = Vec::with_capacity(rows.len());
    // (row, parent output index, depth)
    let mut stack: Vec<(usize, Option<usize>, usize)> =
        top.iter().rev().map(|&r| (r, None, 0)).collect();
    while let Some((r, parent, depth)) = stack.pop() {
        let row = &rows[r];
        let me = paths.len();
        paths.push(PathDiff {
            step: PathStep {
                service: row.service.to_owned(),
                operation: row.operation.to_owned(),
            },
            parent,
            depth,
            a_count: row.counts[0],
            b_count: row.counts[1],
            a_duration_ns: row.durations[0],
            b_duration_ns: row.durations[1],
        });
        stack.extend(row.children.iter().rev().map(|&c| (c, Some(me), depth + 1)));
    }
    Comparison {
        a: side(a),
        b: side(b),
        paths,
    }
}

fn side(tree: &TraceTree) -> TraceSide {
    let mut services: Vec<String> = tree
        .nodes
        .iter()
        .filter(|n| !n.is_placeholder())
        .map(|n| n.service().to_owned())
        .collect();
    services.sort();
    services.dedup();
    TraceSide {
        span_count: tree.span_count(),
        duration_ns: tree.end_unix_nano().saturating_sub(tree.start_unix_nano()),
        services,
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
