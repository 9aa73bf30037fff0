//! Clock-skew correction, after Jaeger's `clockskew` adjuster.
//!
//! Spans are visited parents first. A span whose parent runs on the **same
//! service instance** is never measured against it: it keeps its position
//! relative to the parent and moves exactly as far as the parent moved (so a
//! shifted subtree moves as a whole). A span on another instance is measured
//! against its parent's already adjusted window, with its own clock's times:
//!
//! - inside the window: no shift (and, as in Jaeger, a fresh start: its
//!   descendants on its instance are not moved either);
//! - RPC pair (CLIENT parent, SERVER child) that does not fit: centred in
//!   the client span, i.e. the difference in durations (the network latency)
//!   split evenly before and after; if the server span is longer than the
//!   client span nothing can be estimated, except that it cannot start
//!   before the client: then its start is aligned with the client's;
//! - messaging (PRODUCER parent or CONSUMER child): consumers legitimately
//!   run after their producer ends, so only a start before the parent's is
//!   corrected (moved to the parent's start);
//! - anything else: the smallest shift into the window (start aligned when
//!   it started early, end aligned when it ended late); a span longer than
//!   its parent is only moved if it started early.
//!
//! Children of a placeholder have no parent clock to compare with and are
//! not moved. Every moved span gets a warning `clock skew adjusted by
//! -1.234ms` and an [`Adjustment`] with the reason.
//!
//! The service instance is `service.name` + `service.namespace` +
//! `service.instance.id`, or, without an instance id, the host and process
//! attributes (`host.name`, `host.id`, `process.pid`, `k8s.pod.uid`,
//! `container.id`). With none of them, every span of a service counts as one
//! instance: when in doubt, nothing is adjusted.

use std::hash::{Hash, Hasher};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::tree::{hex_id, SpanId, TraceTree};
use crate::query::SpanKind;

/// One clock-skew correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The node in [`TraceTree::nodes`].
    pub node: usize,
    pub span_id: SpanId,
    /// How far the span moved (ns, + = later).
    pub shift_ns: i64,
    pub reason: String,
}

/// Resource attributes that identify an instance, with the instance id first.
const INSTANCE_KEYS: [&str; 7] = [
    "service.namespace",
    "service.instance.id",
    "host.name",
    "host.id",
    "process.pid",
    "k8s.pod.uid",
    "container.id",
];

/// A hash of the identity of the service instance that sent a span.
fn instance_key(service: &str, attributes: &[KeyValue]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    service.hash(&mut h);
    let has_instance_id = attributes.iter().any(|kv| kv.key == "service.instance.id");
    for key in INSTANCE_KEYS {
        if has_instance_id && key != "service.namespace" && key != "service.instance.id" {
            continue;
        }
        let Some(kv) = attributes.iter().find(|kv| kv.key == key) else {
            continue;
        };
        key.hash(&mut h);
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => s.hash(&mut h),
            Some(Value::IntValue(i)) => i.hash(&mut h),
            other => format!("{other:?}").hash(&mut h),
        }
    }
    h.finish()
}

/// `clock skew adjusted by -1.234ms`.
pub fn warning(shift_ns: i64) -> String {
    format!("clock skew adjusted by {:.3}ms", shift_ns as f64 / 1e6)
}

/// Correct clock skew in place; returns the adjustments, parents first.
pub fn adjust(tree: &mut TraceTree) -> Vec<Adjustment> {
    let keys: Vec<u64> = tree
        .nodes
        .iter()
        .map(|n| {
            n.record.as_ref().map_or(0, |r| {
                instance_key(r.service_name(), &r.resource.attributes)
            })
        })
        .collect();
    let mut adjustments = Vec::new();
    for i in tree.preorder() {
        let node = &tree.nodes[i];
        if node.is_placeholder() {
            continue;
        }
        let Some(p) = node.parent else { continue };
        let parent = &tree.nodes[p];
        if parent.is_placeholder() {
            continue;
        }
        let (shift, reason) = if keys[i] == keys[p] {
            let shift = parent.shift_ns;
            let reason = format!(
                "moved with its parent {} (same service instance)",
                hex_id(&parent.span_id)
            );
            (shift, reason)
        } else {
            let Some((shift, why)) = measure(
                Window::of(node.start_unix_nano, node.end_unix_nano),
                Window::of(parent.start_unix_nano, parent.end_unix_nano),
                parent.kind(),
                node.kind(),
            ) else {
                continue;
            };
            let reason = format!(
                "clock skew against parent {} on service '{}': {why}",
                hex_id(&parent.span_id),
                parent.service()
            );
            (shift, reason)
        };
        if shift == 0 {
            continue;
        }
        let node = &mut tree.nodes[i];
        node.start_unix_nano = shifted(node.start_unix_nano, shift);
        node.end_unix_nano = shifted(node.end_unix_nano, shift);
        node.shift_ns = shift;
        node.warnings.push(warning(shift));
        adjustments.push(Adjustment {
            node: i,
            span_id: node.span_id,
            shift_ns: shift,
            reason,
        });
    }
    tree.refresh();
    adjustments
}

fn shifted(t: u64, shift: i64) -> u64 {
    let v = i128::from(t) + i128::from(shift);
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i128,
    end: i128,
}

impl Window {
    fn of(start: u64, end: u64) -> Window {
        Window {
            start: i128::from(start),
            end: i128::from(end),
        }
    }

    fn duration(&self) -> i128 {
        self.end - self.start
    }
}

/// The shift that puts `child` (its own clock) into `parent` (adjusted), and
/// why; `None` when it needs none.
fn measure(
    child: Window,
    parent: Window,
    parent_kind: SpanKind,
    child_kind: SpanKind,
) -> Option<(i64, &'static str)> {
    let early = child.start < parent.start;
    let late = child.end > parent.end;
    if !early && !late {
        return None;
    }
    let fits = child.duration() <= parent.duration();
    let messaging = parent_kind == SpanKind::Producer || child_kind == SpanKind::Consumer;
    let rpc = parent_kind == SpanKind::Client && child_kind == SpanKind::Server;
    let (shift, why) = if messaging {
        if !early {
            return None;
        }
        (
            parent.start - child.start,
            "consumer started before its producer; moved to the producer's start",
        )
    } else if rpc && fits {
        let latency = (parent.duration() - child.duration()) / 2;
        (
            parent.start + latency - child.start,
            "server span outside its client span; centred in it (latency split evenly)",
        )
    } else if !fits {
        if !early {
            return None;
        }
        (
            parent.start - child.start,
            "longer than its parent and started before it; start aligned with the parent's",
        )
    } else if early {
        (
            parent.start - child.start,
            "started before its parent; moved to the parent's start",
        )
    } else {
        (
            parent.end - child.end,
            "ended after its parent; moved to end with it",
        )
    };
    let shift = i64::try_from(shift).ok()?;
    (shift != 0).then_some((shift, why))
}

#[cfg(test)]
#[path = "skew_tests.rs"]
mod tests;
