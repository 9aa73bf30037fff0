//! The native trace JSON: `GET /api/v1/traces/{trace_id}` and
//! `GET /api/v1/traces/compare`, filled from an assembled trace.
//!
//! Ids are lowercase hex (trace 32, span 16 characters), times Unix ns and
//! durations ns as JSON integers, span times after clock-skew adjustment.

use serde::{Serialize, Serializer};

use crate::api::anyvalue::AttrsJson;
use crate::query::SpanKind;
use crate::traces::tree::{hex_id, SpanId};
use crate::traces::{AssembledTrace, Comparison, Node, PathDiff, TraceSide, TraceTree};

/// The whole answer of trace by id. Borrows the assembled trace: nothing of
/// a span is copied, its JSON is written straight from the stored protobuf.
#[derive(Debug, Serialize)]
pub struct TraceJson<'a> {
    pub trace_id: String,
    pub services: Vec<&'a str>,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    /// Received spans (placeholders not counted).
    pub span_count: usize,
    pub error_count: usize,
    /// Top-level nodes: spans without a parent, and placeholders.
    pub roots: Vec<HexSpanId>,
    /// Received spans whose parent never arrived.
    pub orphans: Vec<HexSpanId>,
    pub critical_path: Vec<CriticalPathJson>,
    pub adjustments: Vec<AdjustmentJson<'a>>,
    /// Left out with `?fields=summary`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<SpanJson<'a>>>,
}

/// A span id serialized as 16 lowercase hex characters, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HexSpanId(pub SpanId);

impl Serialize for HexSpanId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 16];
        match hex::encode_to_slice(self.0, &mut buf) {
            Ok(()) => serializer.serialize_str(std::str::from_utf8(&buf).unwrap_or_default()),
            Err(_) => serializer.serialize_str(&hex_id(&self.0)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CriticalPathJson {
    pub span_id: HexSpanId,
    pub self_ns: u64,
}

#[derive(Debug, Serialize)]
pub struct AdjustmentJson<'a> {
    pub span_id: HexSpanId,
    pub shift_ns: i64,
    pub reason: &'a str,
}

#[derive(Debug, Serialize)]
pub struct SpanJson<'a> {
    pub span_id: HexSpanId,
    /// `null` for a root; for an orphan, the id of the span that never arrived.
    pub parent_span_id: Option<HexSpanId>,
    pub service: &'a str,
    pub name: &'a str,
    /// `server`, `client`, `producer`, `consumer`, `internal`, `unspecified`.
    pub kind: &'static str,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: &'static str,
    pub status_message: &'a str,
    pub attributes: AttrsJson<'a>,
    pub resource: AttrsJson<'a>,
    pub events: Vec<EventJson<'a>>,
    pub links: Vec<LinkJson<'a>>,
    pub children: Vec<HexSpanId>,
    /// Orphan, placeholder, merged duplicates, clock-skew shift.
    pub warnings: &'a [String],
    /// Clock-skew shift applied to this span's times and events (ns).
    pub shift_ns: i64,
    /// `true` only on placeholders for spans that never arrived.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

#[derive(Debug, Serialize)]
pub struct EventJson<'a> {
    pub name: &'a str,
    pub time_unix_nano: u64,
    pub attributes: AttrsJson<'a>,
}

#[derive(Debug, Serialize)]
pub struct LinkJson<'a> {
    pub trace_id: String,
    pub span_id: HexSpanId,
    /// Always `FOLLOWS_FROM`.
    pub ref_type: &'static str,
    pub attributes: AttrsJson<'a>,
}

/// Build the answer; `with_spans` false for `?fields=summary`.
pub fn trace_json(trace: &AssembledTrace, with_spans: bool) -> TraceJson<'_> {
    let tree = &trace.tree;
    let ids = |list: &[usize]| -> Vec<HexSpanId> {
        list.iter()
            .map(|&i| HexSpanId(tree.nodes[i].span_id))
            .collect()
    };
    let mut services: Vec<&str> = tree
        .nodes
        .iter()
        .filter(|n| !n.is_placeholder())
        .map(|n| n.service())
        .collect();
    services.sort_unstable();
    services.dedup();
    let start = tree.start_unix_nano();
    let critical_path = crate::traces::critical_path(tree)
        .into_iter()
        .map(|e| CriticalPathJson {
            span_id: HexSpanId(e.span_id),
            self_ns: e.self_ns,
        })
        .collect();
    let adjustments = trace
        .adjustments
        .iter()
        .map(|a| AdjustmentJson {
            span_id: HexSpanId(a.span_id),
            shift_ns: a.shift_ns,
            reason: &a.reason,
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

fn span_json<'a>(tree: &'a TraceTree, node: &'a Node) -> SpanJson<'a> {
    let children = node
        .children
        .iter()
        .map(|&c| HexSpanId(tree.nodes[c].span_id))
        .collect();
    let base = SpanJson {
        span_id: HexSpanId(node.span_id),
        parent_span_id: node.parent_span_id.map(HexSpanId),
        service: node.service(),
        name: node.name(),
        kind: kind_name(node.kind()),
        start_unix_nano: node.start_unix_nano,
        end_unix_nano: node.end_unix_nano,
        status_code: "UNSET",
        status_message: "",
        attributes: AttrsJson(&[]),
        resource: AttrsJson(&[]),
        events: Vec::new(),
        links: Vec::new(),
        children,
        warnings: &node.warnings,
        shift_ns: node.shift_ns,
        missing: node.is_placeholder(),
    };
    let Some(record) = &node.record else {
        return base;
    };
    let span = &record.span;
    let (status_code, status_message) = match &span.status {
        Some(s) if s.code == 1 => ("OK", s.message.as_str()),
        Some(s) if s.code == 2 => ("ERROR", s.message.as_str()),
        Some(s) => ("UNSET", s.message.as_str()),
        None => ("UNSET", ""),
    };
    SpanJson {
        status_code,
        status_message,
        attributes: AttrsJson(&span.attributes),
        resource: AttrsJson(&record.resource.attributes),
        events: span
            .events
            .iter()
            .map(|e| EventJson {
                name: &e.name,
                time_unix_nano: shifted(e.time_unix_nano, node.shift_ns),
                attributes: AttrsJson(&e.attributes),
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|l| LinkJson {
                trace_id: hex::encode(crate::traces::tree::trace_id_of(&l.trace_id)),
                span_id: HexSpanId(crate::traces::tree::span_id_of(&l.span_id)),
                ref_type: "FOLLOWS_FROM",
                attributes: AttrsJson(&l.attributes),
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
