//! [`SpanIndex`]: the read side of the span partitions ([`TraceStore`]).

use std::ops::Bound;
use std::sync::Arc;

use tantivy::collector::DocSetCollector;
use tantivy::query::{AllQuery, BooleanQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::attrs::hex_into;
use super::catalog::Catalog;
use super::partition::{Partition, PartitionSet};
use super::schema::SpanFields;
use super::spans::decode_span;
use super::IndexError;
use crate::query::lang::Expr;
use crate::query::{
    Operation, QueryError, SpanKind, SpanRecord, TraceId, TracePage, TraceQuery, TraceSearch,
    TraceStore,
};

/// Largest number of spans returned for one trace.
const MAX_TRACE_SPANS: usize = 200_000;

/// Searchable span partitions plus the services/operations set.
pub struct SpanIndex {
    pub(crate) set: Arc<PartitionSet>,
    pub(crate) f: SpanFields,
    pub(crate) catalog: Catalog,
}

pub(crate) fn storage_err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Storage(e.to_string())
}

pub(crate) fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// A range over a u64 fast field; `None` when both ends are open.
pub(crate) fn u64_range(
    field: Field,
    min: Option<u64>,
    max: Option<u64>,
) -> Option<Box<dyn Query>> {
    if min.is_none() && max.is_none() {
        return None;
    }
    let lo = min.map_or(Bound::Unbounded, |v| {
        Bound::Included(Term::from_field_u64(field, v))
    });
    let hi = max.map_or(Bound::Unbounded, |v| {
        Bound::Included(Term::from_field_u64(field, v))
    });
    Some(Box::new(RangeQuery::new(lo, hi)))
}

pub(crate) fn all_of(mut clauses: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    match clauses.len() {
        0 => Box::new(AllQuery),
        1 => clauses.remove(0),
        _ => Box::new(BooleanQuery::intersection(clauses)),
    }
}

/// Min and max of a u64 fast field over a searcher's segments (`None` when empty).
pub(crate) fn fast_range(
    searcher: &Searcher,
    field: &str,
) -> Result<Option<(u64, u64)>, QueryError> {
    let mut range: Option<(u64, u64)> = None;
    for seg in searcher.segment_readers() {
        if seg.num_docs() == 0 {
            continue;
        }
        let col = seg.fast_fields().u64(field).map_err(storage_err)?;
        let (lo, hi) = (col.min_value(), col.max_value());
        range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    Ok(range)
}

/// Searchers of the partitions whose `field` values can fall in `[min, max]`.
pub(crate) fn searchers_overlapping(
    parts: &[Arc<Partition>],
    field: &str,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<Vec<Searcher>, QueryError> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let searcher = part.searcher();
        let Some((lo, hi)) = fast_range(&searcher, field)? else {
            continue;
        };
        if min.is_some_and(|m| hi < m) || max.is_some_and(|m| lo > m) {
            continue;
        }
        out.push(searcher);
    }
    Ok(out)
}

impl SpanIndex {
    pub(crate) fn new(set: Arc<PartitionSet>, f: SpanFields, catalog: Catalog) -> Self {
        SpanIndex { set, f, catalog }
    }

    /// Rebuild the services/operations set from the committed partitions.
    pub(crate) fn rebuild_catalog(&self) -> Result<(), IndexError> {
        self.catalog.rebuild(&self.set.snapshot(), self.f.svc_op)
    }

    /// The Jaeger search, run by the search-language engine: its
    /// conditions become one expression (see `Expr::from_trace_query`).
    fn find(&self, q: &TraceQuery) -> Result<Vec<TraceId>, QueryError> {
        if let (Some(a), Some(b)) = (q.min_duration_ns, q.max_duration_ns) {
            if a > b {
                return Ok(Vec::new());
            }
        }
        let filter = Expr::from_trace_query(q);
        let page = self.search_keys(
            filter.as_ref(),
            q.start_unix_nano,
            q.end_unix_nano,
            q.limit,
            None,
        )?;
        Ok(page.keys.into_iter().map(|(_, id)| id).collect())
    }

    fn spans_of(&self, trace_id: &TraceId) -> Result<Vec<SpanRecord>, QueryError> {
        let mut hex = String::new();
        let query = term_query(self.f.trace_id, hex_into(&mut hex, trace_id));
        let mut out = Vec::new();
        for part in self.set.snapshot() {
            let searcher = part.searcher();
            let mut docs: Vec<DocAddress> = searcher
                .search(&*query, &DocSetCollector)
                .map_err(storage_err)?
                .into_iter()
                .collect();
            docs.sort_unstable();
            let room = MAX_TRACE_SPANS.saturating_sub(out.len());
            if docs.len() > room {
                tracing::warn!(trace_id = %hex, "trace has too many spans; truncated");
                docs.truncate(room);
            }
            read_spans(&searcher, self.f.raw, &part.name, &docs, &mut out)?;
        }
        Ok(by_start(out))
    }
}

/// Spans ordered by start time, then span id. A span record is a few
/// hundred bytes: sorting the records themselves moved each one ~log n
/// times (most of a 100k-span read), so the keys are sorted and each record
/// is moved once.
fn by_start(spans: Vec<SpanRecord>) -> Vec<SpanRecord> {
    fn key(r: &SpanRecord) -> (u64, &[u8]) {
        (r.span.start_time_unix_nano, r.span.span_id.as_slice())
    }
    if spans.is_sorted_by(|a, b| key(a) <= key(b)) {
        return spans;
    }
    let mut keyed: Vec<(u64, &[u8], usize)> = spans
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (start, id) = key(r);
            (start, id, i)
        })
        .collect();
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, _, i)| i).collect();
    let mut slots: Vec<Option<SpanRecord>> = spans.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// Traces with at least this many spans in one partition are read on
/// several threads: fetching and decoding the stored spans is most of the
/// cost of a large trace (a 100k-span trace is ~0.5 s on one core).
const PARALLEL_READ_FROM: usize = 4096;

/// Most threads one large trace read uses.
const MAX_READ_THREADS: usize = 4;

/// Fetch and decode the stored spans at `docs` (sorted) onto `out`, in
/// order. An undecodable span is logged and skipped.
fn read_spans(
    searcher: &Searcher,
    raw: Field,
    partition: &str,
    docs: &[DocAddress],
    out: &mut Vec<SpanRecord>,
) -> Result<(), QueryError> {
    let threads = if docs.len() < PARALLEL_READ_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_READ_THREADS)
    };
    if threads <= 1 {
        return read_chunk(searcher, raw, partition, docs, out);
    }
    // Contiguous chunks: neighbouring documents share doc-store blocks.
    let chunk = docs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let readers: Vec<_> = docs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut spans = Vec::with_capacity(part.len());
                    read_chunk(searcher, raw, partition, part, &mut spans).map(|()| spans)
                })
            })
            .collect();
        for reader in readers {
            let spans = reader
                .join()
                .map_err(|_| storage_err("a trace reading thread panicked"))??;
            out.extend(spans);
        }
        Ok(())
    })
}

fn read_chunk(
    searcher: &Searcher,
    raw: Field,
    partition: &str,
    docs: &[DocAddress],
    out: &mut Vec<SpanRecord>,
) -> Result<(), QueryError> {
    for &addr in docs {
        let doc: TantivyDocument = searcher.doc(addr).map_err(storage_err)?;
        let Some(bytes) = doc.get_first(raw).and_then(|v| v.as_bytes()) else {
            continue;
        };
        match decode_span(bytes) {
            Ok(rec) => out.push(rec),
            Err(e) => {
                tracing::warn!(partition, error = %e, "stored span undecodable; skipped")
            }
        }
    }
    Ok(())
}

impl TraceStore for SpanIndex {
    fn services(&self) -> Result<Vec<String>, QueryError> {
        Ok(self.catalog.services())
    }

    fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<Operation>, QueryError> {
        Ok(self.catalog.operations(service, kind))
    }

    fn trace(&self, trace_id: &TraceId) -> Result<Vec<SpanRecord>, QueryError> {
        self.spans_of(trace_id)
    }

    fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, QueryError> {
        self.find(query)
    }

    fn search_traces(&self, search: &TraceSearch) -> Result<TracePage, QueryError> {
        self.search_page(search)
    }
}
