//! Trace assembly: from the stored spans of one trace id to a call tree the
//! APIs can show.
//!
//! Owns the pure logic, with no storage, tantivy or HTTP in sight:
//!
//! ```text
//! tree.rs           spans → tree by parent id: several roots, orphans under a
//!                   "missing span" placeholder that keeps the missing id,
//!                   duplicate span ids merged, parent cycles cut
//! skew.rs           clock-skew correction in the manner of Jaeger's adjuster
//! critical_path.rs  the chain of spans that set the trace's end-to-end time
//! compare.rs        structural diff of two traces by (service, operation) path
//! ```
//!
//! Everything works from [`crate::query::SpanRecord`] (the lossless stored
//! span with its resource and scope). Span links are not tree edges: they stay
//! on the record and the APIs show them as `FOLLOWS_FROM` references. Late
//! spans need no special handling: the store returns every span of the trace
//! id whenever it is read, so a span that arrives minutes later simply takes
//! its place in the next reconstruction.
//!
//! Every walk is iterative (a 100k-deep chain must not overflow the stack)
//! and every step is O(n log n) at worst, so a 100k-span trace assembles in
//! well under a second. This module must not touch the store, HTTP shapes or
//! configuration parsing; `api/` calls it with a [`TraceSettings`].

pub mod compare;
pub mod critical_path;
pub mod skew;
pub mod tree;

#[cfg(test)]
mod testing;

pub use compare::{compare, Comparison, PathDiff, PathStep, TraceSide};
pub use critical_path::{critical_path, PathEntry};
pub use skew::Adjustment;
pub use tree::{Node, SpanId, TraceTree};

use crate::query::SpanRecord;

/// How traces are assembled; set from the collector configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSettings {
    /// Correct clock skew between services (`--clock-skew-adjust`, on by default).
    pub clock_skew_adjust: bool,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            clock_skew_adjust: true,
        }
    }
}

/// A reconstructed trace: the tree (with adjusted times) and the clock-skew
/// adjustments that were made to it.
#[derive(Debug, Clone)]
pub struct AssembledTrace {
    pub tree: TraceTree,
    pub adjustments: Vec<Adjustment>,
}

/// Build the tree of one trace's spans and, when enabled, correct clock skew.
/// `None` when there are no spans (an empty trace must never reach a client).
pub fn assemble(records: Vec<SpanRecord>, settings: &TraceSettings) -> Option<AssembledTrace> {
    let mut tree = TraceTree::build(records)?;
    let adjustments = if settings.clock_skew_adjust {
        skew::adjust(&mut tree)
    } else {
        Vec::new()
    };
    Some(AssembledTrace { tree, adjustments })
}
