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
            for addr in docs {
                if out.len() >= MAX_TRACE_SPANS {
                    tracing::warn!(trace_id = %hex, "trace has too many spans; truncated");
                    break;
                }
                let doc: TantivyDocument = searcher.doc(addr).map_err(storage_err)?;
                let Some(raw) = doc.get_first(self.f.raw).and_then(|v| v.as_bytes()) else {
                    continue;
                };
                match decode_span(raw) {
                    Ok(rec) => out.push(rec),
                    Err(e) => {
                        tracing::warn!(partition = %part.name, error = %e, "stored span undecodable; skipped")
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (a.span.start_time_unix_nano, &a.span.span_id)
                .cmp(&(b.span.start_time_unix_nano, &b.span.span_id))
        });
        Ok(out)
    }
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
