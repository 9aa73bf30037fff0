//! The native trace JSON: `GET /api/v1/traces/{trace_id}` and
//! `GET /api/v1/traces/compare`, filled from an assembled trace.
//!
//! Ids are lowercase hex (trace 32, span 16 characters), times Unix ns and
//! durations ns as JSON integers, span times after clock-skew adjustment.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::anyvalue;
use crate::query::SpanKind;
use crate::traces::tree::hex_id;
use crate::traces::{AssembledTrace, Comparison, Node, PathDiff, TraceSide, TraceTree};

/// The whole answer of trace by id.
#[derive(Debug, Serialize)]
pub struct TraceJson {
    pub trace_id: String,
    pub services: Vec<String>,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    /// Received spans (placeholders not counted).
    pub span_count: usize,
    pub error_count: usize,
    /// Top-level nodes: spans without a parent, and placeholders.
    pub roots: Vec<String>,
    /// Received spans whose parent never arrived.
    pub orphans: Vec<String>,
    pub critical_path: Vec<CriticalPathJson>,
    pub adjustments: Vec<AdjustmentJson>,
    /// Left out with `?fields=summary`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<SpanJson>>,
}

#[derive(Debug, Serialize)]
pub struct CriticalPathJson {
    pub span_id: String,
    pub self_ns: u64,
}

#[derive(Debug, Serialize)]
pub struct AdjustmentJson {
    pub span_id: String,
    pub shift_ns: i64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct SpanJson {
    pub span_id: String,
    /// `null` for a root; for an orphan, the id of the span that never arrived.
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    /// `server`, `client`, `producer`, `consumer`, `internal`, `unspecified`.
    pub kind: &'static str,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: &'static str,
    pub status_message: String,
    pub attributes: Map<String, Value>,
    pub resource: Map<String, Value>,
    pub events: Vec<EventJson>,
    pub links: Vec<LinkJson>,
    pub children: Vec<String>,
    /// Orphan, placeholder, merged duplicates, clock-skew shift.
    pub warnings: Vec<String>,
    /// Clock-skew shift applied to this span's times and events (ns).
    pub shift_ns: i64,
    /// `true` only on placeholders for spans that never arrived.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

#[derive(Debug, Serialize)]
pub struct EventJson {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct LinkJson {
    pub trace_id: String,
    pub span_id: String,
    /// Always `FOLLOWS_FROM`.
    pub ref_type: &'static str,
    pub attributes: Map<String, Value>,
}

/// Build the answer; `with_spans` false for `?fields=summary`.
pub fn trace_json(trace: &AssembledTrace, with_spans: bool) -> TraceJson {
    let tree = &trace.tree;
    let ids = |list: &[usize]| -> Vec<String> {
        list.iter()
            .map(|&i| hex_id(&tree.nodes[i].span_id))
            .collect()
    };
    let mut services: Vec<String> = tree
        .nodes
        .iter()
        .filter(|n| !n.is_placeholder())
        .map(|n| n.service().to_owned())
        .collect();
    services.sort_unstable();
    services.dedup();
    let start = tree.start_unix_nano();
    let critical_path = crate::traces::critical_path(tree)
        .into_iter()
        .map(|e| CriticalPathJson {
            span_id: hex_id(&e.span_id),
            self_ns: e.self_ns,
        })
        .collect();
    let adjustments = trace
        .adjustments
        .iter()
        .map(|a| AdjustmentJson {
            span_id: hex_id(&a.span_id),
            shift_ns: a.shift_ns,
            reason: a.reason.clone(),
        })
        .collect();
    let spans = with_spans.then(|| {
        let mut order: Vec<usize> = (0..tree.nodes.len()).collect();
        order.sort_by_key(|&i| (tree.nodes[i].start_unix_nano, tree.nodes[i].span_id));
        order
            .into_iter()
            .map(|i| span_json(tree, &tree.nodes[i]))
            .collect()
    });
    TraceJson {
        trace_id: hex::encode(tree.trace_id),
        services,
        start_unix_nano: start,
        duration_ns: tree.end_unix_nano().saturating_sub(start),
        span_count: tree.span_count(),
        error_count: tree.nodes.iter().filter(|n| n.is_error()).count(),
        roots: ids(&tree.roots),
        orphans: ids(&tree.orphans),
        critical_path,
        adjustments,
        spans,
    }
}

fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "unspecified",
        other => other.as_str(),
    }
}

fn shifted(t: u64, shift: i64) -> u64 {
    u64::try_from((i128::from(t) + i128::from(shift)).max(0)).unwrap_or(u64::MAX)
}

fn span_json(tree: &TraceTree, node: &Node) -> SpanJson {
    let children = node
        .children
        .iter()
        .map(|&c| hex_id(&tree.nodes[c].span_id))
        .collect();
    let base = SpanJson {
        span_id: hex_id(&node.span_id),
        parent_span_id: node.parent_span_id.as_ref().map(hex_id),
        service: node.service().to_owned(),
        name: node.name().to_owned(),
        kind: kind_name(node.kind()),
        start_unix_nano: node.start_unix_nano,
        end_unix_nano: node.end_unix_nano,
        status_code: "UNSET",
        status_message: String::new(),
        attributes: Map::new(),
        resource: Map::new(),
        events: Vec::new(),
        links: Vec::new(),
        children,
        warnings: node.warnings.clone(),
        shift_ns: node.shift_ns,
        missing: node.is_placeholder(),
    };
    let Some(record) = &node.record else {
        return base;
    };
    let span = &record.span;
    let (status_code, status_message) = match &span.status {
        Some(s) if s.code == 1 => ("OK", s.message.clone()),
        Some(s) if s.code == 2 => ("ERROR", s.message.clone()),
        Some(s) => ("UNSET", s.message.clone()),
        None => ("UNSET", String::new()),
    };
    SpanJson {
        status_code,
        status_message,
        attributes: anyvalue::attributes_to_json(&span.attributes),
        resource: anyvalue::attributes_to_json(&record.resource.attributes),
        events: span
            .events
            .iter()
            .map(|e| EventJson {
                name: e.name.clone(),
                time_unix_nano: shifted(e.time_unix_nano, node.shift_ns),
                attributes: anyvalue::attributes_to_json(&e.attributes),
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|l| LinkJson {
                trace_id: hex::encode(crate::traces::tree::trace_id_of(&l.trace_id)),
                span_id: hex_id(&crate::traces::tree::span_id_of(&l.span_id)),
                ref_type: "FOLLOWS_FROM",
                attributes: anyvalue::attributes_to_json(&l.attributes),
            })
            .collect(),
        ..base
    }
}

/// The compare answer.
#[derive(Debug, Serialize)]
pub struct CompareJson {
    pub a: SideJson,
    pub b: SideJson,
    pub added: usize,
    pub removed: usize,
    pub count_changed: usize,
    pub paths: Vec<PathJson>,
}

#[derive(Debug, Serialize)]
pub struct SideJson {
    pub trace_id: String,
    pub span_count: usize,
    pub duration_ns: u64,
    pub services: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PathJson {
    pub service: String,
    pub operation: String,
    /// Index of the parent row in `paths`; `null` at the top.
    pub parent: Option<usize>,
    pub depth: usize,
    pub a_count: usize,
    pub b_count: usize,
    pub count_delta: i64,
    pub a_duration_ns: u64,
    pub b_duration_ns: u64,
    pub duration_delta_ns: i64,
    /// `same`, `added` (only in b), `removed` (only in a), `count_changed`.
    pub change: &'static str,
}

pub fn compare_json(a_id: &str, b_id: &str, c: Comparison) -> CompareJson {
    let count = |what: &str| c.paths.iter().filter(|p| p.change() == what).count();
    let (added, removed, count_changed) =
        (count("added"), count("removed"), count("count_changed"));
    let side = |id: &str, s: TraceSide| SideJson {
        trace_id: id.to_owned(),
        span_count: s.span_count,
        duration_ns: s.duration_ns,
        services: s.services,
    };
    let path = |p: PathDiff| PathJson {
        count_delta: p.count_delta(),
        duration_delta_ns: p.duration_delta_ns(),
        change: p.change(),
        service: p.step.service,
        operation: p.step.operation,
        parent: p.parent,
        depth: p.depth,
        a_count: p.a_count,
        b_count: p.b_count,
        a_duration_ns: p.a_duration_ns,
        b_duration_ns: p.b_duration_ns,
    };
    CompareJson {
        a: side(a_id, c.a),
        b: side(b_id, c.b),
        added,
        removed,
        count_changed,
        paths: c.paths.into_iter().map(path).collect(),
    }
}
