//! [`SpanIndex`]: the read side of the span partitions ([`TraceStore`]).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{AllQuery, BooleanQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, Term};

use super::attrs::hex_into;
use super::catalog::Catalog;
use super::partition::{Partition, PartitionSet};
use super::schema::{span_names, SpanFields};
use super::spans::decode_span;
use super::IndexError;
use crate::query::{Operation, QueryError, SpanKind, SpanRecord, TraceId, TraceQuery, TraceStore};

/// Largest number of matching spans one trace search looks at.
const MAX_SPAN_CAP: usize = 1 << 22;
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

    fn query_for(&self, q: &TraceQuery) -> Box<dyn Query> {
        let f = self.f;
        let mut clauses = Vec::new();
        if let Some(s) = &q.service {
            clauses.push(term_query(f.service, s));
        }
        if let Some(op) = &q.operation {
            clauses.push(term_query(f.name, op));
        }
        let mut tag = String::new();
        for (k, v) in &q.tags {
            if k == "service.name" {
                clauses.push(term_query(f.service, v));
                continue;
            }
            tag.clear();
            tag.push_str(k);
            tag.push('=');
            tag.push_str(v);
            clauses.push(term_query(f.tags, &tag));
        }
        clauses.extend(u64_range(f.duration, q.min_duration_ns, q.max_duration_ns));
        clauses.extend(u64_range(f.start, q.start_unix_nano, q.end_unix_nano));
        all_of(clauses)
    }

    fn find(&self, q: &TraceQuery) -> Result<Vec<TraceId>, QueryError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        if let (Some(a), Some(b)) = (q.min_duration_ns, q.max_duration_ns) {
            if a > b {
                return Ok(Vec::new());
            }
        }
        if let (Some(a), Some(b)) = (q.start_unix_nano, q.end_unix_nano) {
            if a > b {
                return Ok(Vec::new());
            }
        }
        let query = self.query_for(q);
        let searchers = searchers_overlapping(
            &self.set.snapshot(),
            span_names::START,
            q.start_unix_nano,
            q.end_unix_nano,
        )?;
        // Phase 1: newest matching spans; grow the cap until `limit` distinct
        // traces are found or every partition is exhausted.
        let mut cap = q.limit.saturating_mul(8).clamp(64, MAX_SPAN_CAP);
        loop {
            let mut hits: Vec<(u64, usize, DocAddress)> = Vec::new();
            let mut truncated = false;
            for (i, searcher) in searchers.iter().enumerate() {
                let top = searcher
                    .search(
                        &*query,
                        &TopDocs::with_limit(cap)
                            .order_by_fast_field::<u64>(span_names::START, Order::Desc),
                    )
                    .map_err(storage_err)?;
                truncated |= top.len() >= cap;
                hits.extend(top.into_iter().map(|(v, a)| (v.unwrap_or(0), i, a)));
            }
            hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            hits.truncate(cap);
            let ids = self.distinct_trace_ids(&searchers, &hits, q.limit)?;
            if ids.len() >= q.limit || !truncated || cap >= MAX_SPAN_CAP {
                return Ok(ids);
            }
            cap = cap.saturating_mul(4).min(MAX_SPAN_CAP);
        }
    }

    /// Trace ids of `hits` (newest first), first occurrence wins, at most `limit`.
    fn distinct_trace_ids(
        &self,
        searchers: &[Searcher],
        hits: &[(u64, usize, DocAddress)],
        limit: usize,
    ) -> Result<Vec<TraceId>, QueryError> {
        let mut columns: HashMap<(usize, u32), Option<StrColumn>> = HashMap::new();
        let mut seen_ords: HashSet<(usize, u32, u64)> = HashSet::new();
        let mut seen_ids: HashSet<TraceId> = HashSet::new();
        let mut out = Vec::new();
        let mut buf = String::new();
        for &(_, i, addr) in hits {
            let col = match columns.entry((i, addr.segment_ord)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let seg = searchers[i].segment_reader(addr.segment_ord);
                    let col = seg
                        .fast_fields()
                        .str(span_names::TRACE_ID)
                        .map_err(storage_err)?;
                    e.insert(col)
                }
            };
            let Some(col) = col.as_ref() else { continue };
            let Some(ord) = col.term_ords(addr.doc_id).next() else {
                continue;
            };
            if !seen_ords.insert((i, addr.segment_ord, ord)) {
                continue;
            }
            buf.clear();
            if !col.ord_to_str(ord, &mut buf).map_err(storage_err)? {
                continue;
            }
            let mut id = [0u8; 16];
            if hex::decode_to_slice(&buf, &mut id).is_err() {
                continue;
            }
            if seen_ids.insert(id) {
                out.push(id);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
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
}
