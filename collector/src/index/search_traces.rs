//! Trace search execution: the compiled query → matching spans newest first
//! → distinct traces in a stable order → one page after the cursor → trace
//! summaries from fast fields (plus the stored root span for its names).
//!
//! Order: traces by the start time of their newest matching span (the
//! "key"), descending, ties by trace id descending. A page after a cursor
//! `(key, id, snapshot)` only sees spans with `ingest_lsn <= snapshot` (what
//! the first page saw), and drops candidates that have a matching span
//! above the cursor key (those were on an earlier page), so paging never
//! skips or repeats a trace, also while new spans arrive.
//!
//! Must not touch HTTP shapes; the query language itself is in
//! `query::lang`, its compilation in `search_query.rs`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermSetQuery};
use tantivy::schema::Value;
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, Term};

use super::attrs::hex_into;
use super::schema::span_names;
use super::search_query::compile;
use super::search_spans::{fast_range, searchers_overlapping, storage_err, SpanIndex};
use super::spans::decode_span;
use crate::query::lang::Expr;
use crate::query::{QueryError, SearchCursor, TraceId, TracePage, TraceSearch, TraceSummary};

/// Largest number of matching spans one page looks at.
const MAX_SPAN_CAP: usize = 1 << 22;
/// Spans per trace whose stored body may be read to find the root.
const ROOT_CANDIDATES: usize = 4;

/// Traces of one page in order, and whether more may follow.
pub(crate) struct KeyPage {
    /// `(key, trace id)`, key descending, then id descending.
    pub keys: Vec<(u64, TraceId)>,
    pub more: bool,
    pub snapshot: u64,
}

impl SpanIndex {
    /// One page of a search, with summaries and the next cursor.
    pub(crate) fn search_page(&self, s: &TraceSearch) -> Result<TracePage, QueryError> {
        let page = self.search_keys(
            s.filter.as_ref(),
            s.start_unix_nano,
            s.end_unix_nano,
            s.limit,
            s.cursor.as_ref(),
        )?;
        let traces = self.summaries(&page.keys)?;
        let next_cursor = match page.keys.last() {
            Some(&(key, trace_id)) if page.more => Some(SearchCursor {
                key,
                trace_id,
                snapshot: page.snapshot,
            }),
            _ => None,
        };
        Ok(TracePage {
            traces,
            next_cursor,
        })
    }

    /// The traces of one page, in order.
    pub(crate) fn search_keys(
        &self,
        filter: Option<&Expr>,
        start: Option<u64>,
        end: Option<u64>,
        limit: usize,
        cursor: Option<&SearchCursor>,
    ) -> Result<KeyPage, QueryError> {
        let parts = self.set.snapshot();
        let mut empty = KeyPage {
            keys: Vec::new(),
            more: false,
            snapshot: cursor.map_or(0, |c| c.snapshot),
        };
        // The snapshot of a first page: the newest ingest position visible now.
        if cursor.is_none() {
            for part in &parts {
                if let Some((_, hi)) = fast_range(&part.searcher(), span_names::LSN)? {
                    empty.snapshot = empty.snapshot.max(hi);
                }
            }
        }
        let snapshot = empty.snapshot;
        // The window, narrowed to at or below the cursor key.
        let hi = match (end, cursor) {
            (Some(e), Some(c)) => Some(e.min(c.key)),
            (e, c) => e.or(c.map(|c| c.key)),
        };
        if limit == 0 || matches!((start, hi), (Some(a), Some(b)) if a > b) {
            return Ok(empty);
        }
        let f = self.f;
        let filter_query = filter.map(|e| compile(&f, e)).transpose()?;
        // Spans the page may use.
        let base = |lo: Option<u64>, hi: Option<u64>| -> Box<dyn Query> {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            if let Some(q) = &filter_query {
                clauses.push((Occur::Must, q.box_clone()));
            }
            if lo.is_some() || hi.is_some() {
                clauses.push((Occur::Must, u64_between(f.start, lo, hi)));
            }
            if cursor.is_some() {
                clauses.push((Occur::Must, u64_between(f.lsn, None, Some(snapshot))));
            }
            if clauses.is_empty() {
                Box::new(tantivy::query::AllQuery)
            } else {
                Box::new(BooleanQuery::new(clauses))
            }
        };
        let query = base(start, hi);
        let searchers = searchers_overlapping(&parts, span_names::START, start, hi)?;
        let want = limit.saturating_add(1);
        let mut cap = want.saturating_mul(8).clamp(64, MAX_SPAN_CAP);
        loop {
            let (hits, truncated) = top_spans(&searchers, &*query, cap)?;
            let floor = truncated.then(|| hits.last().map_or(0, |h| h.0));
            let exhausted = !truncated || cap >= MAX_SPAN_CAP;
            let mut cands = distinct_traces(&searchers, &hits)?;
            // Traces whose key sits at the truncation floor may have matching
            // spans beyond the cap: only sure keys are used, unless the cap is maxed.
            if let (Some(fl), false) = (floor, exhausted) {
                cands.retain(|&(k, _)| k > fl);
            }
            if let Some(c) = cursor {
                cands.retain(|&(k, id)| k < c.key || id < c.trace_id);
                let above = u64::try_from(u128::from(c.key) + 1).ok();
                if let Some(lo) = above.filter(|lo| end.is_none_or(|e| *lo <= e)) {
                    let seen = traces_with_match(&parts, &*base(Some(lo), end), &cands, f)?;
                    cands.retain(|(_, id)| !seen.contains(id));
                }
            }
            cands.sort_unstable_by(|a, b| b.cmp(a));
            if cands.len() >= want || exhausted {
                let more = cands.len() > limit || (truncated && cap >= MAX_SPAN_CAP);
                cands.truncate(limit);
                return Ok(KeyPage {
                    keys: cands,
                    more,
                    snapshot,
                });
            }
            cap = cap.saturating_mul(4).min(MAX_SPAN_CAP);
        }
    }

    /// Summaries of the given traces, in the same order (traces that vanished
    /// meanwhile, e.g. by retention, are left out).
    fn summaries(&self, keys: &[(u64, TraceId)]) -> Result<Vec<TraceSummary>, QueryError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.f;
        let mut hex = String::new();
        let index_of: HashMap<String, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, (_, id))| (hex_into(&mut hex, id).to_owned(), i))
            .collect();
        let query = TermSetQuery::new(
            index_of
                .keys()
                .map(|h| Term::from_field_text(f.trace_id, h)),
        );
        let mut acc: Vec<Acc> = keys.iter().map(|_| Acc::default()).collect();
        let parts = self.set.snapshot();
        let searchers: Vec<Searcher> = parts.iter().map(|p| p.searcher()).collect();
        for (pi, searcher) in searchers.iter().enumerate() {
            let docs = searcher
                .search(&query, &DocSetCollector)
                .map_err(storage_err)?;
            let mut by_segment: HashMap<u32, Vec<u32>> = HashMap::new();
            for d in docs {
                by_segment.entry(d.segment_ord).or_default().push(d.doc_id);
            }
            for (seg_ord, doc_ids) in by_segment {
                let seg = searcher.segment_reader(seg_ord);
                let ff = seg.fast_fields();
                let (Some(tids), Some(services)) = (
                    ff.str(span_names::TRACE_ID).map_err(storage_err)?,
                    ff.str(span_names::SERVICE).map_err(storage_err)?,
                ) else {
                    continue;
                };
                let starts = ff.u64(span_names::START).map_err(storage_err)?;
                let durations = ff.u64(span_names::DURATION).map_err(storage_err)?;
                let statuses = ff.u64(span_names::STATUS).map_err(storage_err)?;
                let mut trace_of_ord: HashMap<u64, Option<usize>> = HashMap::new();
                let mut service_of_ord: HashMap<u64, String> = HashMap::new();
                let mut buf = String::new();
                for doc in doc_ids {
                    let Some(ord) = tids.term_ords(doc).next() else {
                        continue;
                    };
                    let slot = match trace_of_ord.get(&ord) {
                        Some(s) => *s,
                        None => {
                            buf.clear();
                            tids.ord_to_str(ord, &mut buf).map_err(storage_err)?;
                            let s = index_of.get(&buf).copied();
                            trace_of_ord.insert(ord, s);
                            s
                        }
                    };
                    let Some(slot) = slot else { continue };
                    let a = &mut acc[slot];
                    let start = starts.first(doc).unwrap_or(0);
                    let duration = durations.first(doc).unwrap_or(0);
                    a.spans += 1;
                    a.start = a.start.min(start);
                    a.end = a.end.max(start.saturating_add(duration));
                    if statuses.first(doc) == Some(2) {
                        a.errors += 1;
                    }
                    if let Some(sord) = services.term_ords(doc).next() {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            service_of_ord.entry(sord)
                        {
                            buf.clear();
                            services.ord_to_str(sord, &mut buf).map_err(storage_err)?;
                            e.insert(buf.clone());
                        }
                        if let Some(name) = service_of_ord.get(&sord) {
                            if !a.services.contains(name) {
                                a.services.insert(name.clone());
                            }
                        }
                    }
                    a.offer_root(start, duration, pi, DocAddress::new(seg_ord, doc));
                }
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for (&(key, trace_id), a) in keys.iter().zip(acc) {
            if a.spans == 0 {
                continue;
            }
            let (root_service, root_operation) = self.root_names(&searchers, &a.earliest)?;
            out.push(TraceSummary {
                trace_id,
                root_service,
                root_operation,
                start_unix_nano: a.start,
                duration_ns: a.end.saturating_sub(a.start),
                span_count: a.spans,
                error_count: a.errors,
                services: a.services.into_iter().collect(),
                matched_unix_nano: key,
            });
        }
        Ok(out)
    }

    /// Service and name of the first parentless span among the earliest
    /// ones, else of the earliest span.
    fn root_names(
        &self,
        searchers: &[Searcher],
        earliest: &[(u64, std::cmp::Reverse<u64>, usize, DocAddress)],
    ) -> Result<(String, String), QueryError> {
        let mut fallback = None;
        for &(_, _, pi, addr) in earliest {
            let doc: TantivyDocument = searchers[pi].doc(addr).map_err(storage_err)?;
            let Some(raw) = doc.get_first(self.f.raw).and_then(|v| v.as_bytes()) else {
                continue;
            };
            let Ok(rec) = decode_span(raw) else { continue };
            let names = (rec.service_name().to_owned(), rec.span.name.clone());
            if rec.span.parent_span_id.iter().all(|&b| b == 0) {
                return Ok(names);
            }
            fallback.get_or_insert(names);
        }
        Ok(fallback.unwrap_or_default())
    }
}

/// Per-trace totals while scanning its spans.
struct Acc {
    spans: usize,
    errors: usize,
    start: u64,
    end: u64,
    services: BTreeSet<String>,
    /// The earliest spans (start, longest first, partition, address), sorted.
    earliest: Vec<(u64, std::cmp::Reverse<u64>, usize, DocAddress)>,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            spans: 0,
            errors: 0,
            start: u64::MAX,
            end: 0,
            services: BTreeSet::new(),
            earliest: Vec::new(),
        }
    }
}

impl Acc {
    fn offer_root(&mut self, start: u64, duration: u64, part: usize, addr: DocAddress) {
        let item = (start, std::cmp::Reverse(duration), part, addr);
        if self.earliest.len() == ROOT_CANDIDATES {
            match self.earliest.last() {
                Some(last) if item < *last => {
                    self.earliest.pop();
                }
                _ => return,
            }
        }
        let at = self.earliest.partition_point(|x| *x < item);
        self.earliest.insert(at, item);
    }
}

/// `lo <= field <= hi` over a u64 fast field (open ends when `None`).
fn u64_between(field: tantivy::schema::Field, lo: Option<u64>, hi: Option<u64>) -> Box<dyn Query> {
    let bound = |v: Option<u64>| {
        v.map_or(Bound::Unbounded, |v| {
            Bound::Included(Term::from_field_u64(field, v))
        })
    };
    Box::new(RangeQuery::new(bound(lo), bound(hi)))
}

/// One matching span: (start, searcher index, address).
type SpanHit = (u64, usize, DocAddress);

/// The newest `cap` matching spans over all searchers, newest first; and
/// whether any searcher had more.
fn top_spans(
    searchers: &[Searcher],
    query: &dyn Query,
    cap: usize,
) -> Result<(Vec<SpanHit>, bool), QueryError> {
    let mut hits = Vec::new();
    let mut truncated = false;
    for (i, searcher) in searchers.iter().enumerate() {
        let top = searcher
            .search(
                query,
                &TopDocs::with_limit(cap)
                    .order_by_fast_field::<u64>(span_names::START, Order::Desc),
            )
            .map_err(storage_err)?;
        truncated |= top.len() >= cap;
        hits.extend(top.into_iter().map(|(v, a)| (v.unwrap_or(0), i, a)));
    }
    hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    if hits.len() > cap {
        hits.truncate(cap);
        truncated = true;
    }
    Ok((hits, truncated))
}

/// `(key, trace id)` of each trace in `hits`, the key being its newest hit.
fn distinct_traces(
    searchers: &[Searcher],
    hits: &[(u64, usize, DocAddress)],
) -> Result<Vec<(u64, TraceId)>, QueryError> {
    let mut columns: HashMap<(usize, u32), Option<tantivy::columnar::StrColumn>> = HashMap::new();
    let mut seen_ords: HashSet<(usize, u32, u64)> = HashSet::new();
    let mut seen: HashSet<TraceId> = HashSet::new();
    let mut out = Vec::new();
    let mut buf = String::new();
    for &(start, i, addr) in hits {
        let col = match columns.entry((i, addr.segment_ord)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let seg = searchers[i].segment_reader(addr.segment_ord);
                e.insert(
                    seg.fast_fields()
                        .str(span_names::TRACE_ID)
                        .map_err(storage_err)?,
                )
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
        if seen.insert(id) {
            out.push((start, id));
        }
    }
    Ok(out)
}

/// Which of `cands` have a span matching `query` (in any partition).
fn traces_with_match(
    parts: &[std::sync::Arc<super::partition::Partition>],
    query: &dyn Query,
    cands: &[(u64, TraceId)],
    f: super::schema::SpanFields,
) -> Result<HashSet<TraceId>, QueryError> {
    let mut found = HashSet::new();
    if cands.is_empty() {
        return Ok(found);
    }
    let mut hex = String::new();
    let ids = TermSetQuery::new(
        cands
            .iter()
            .map(|(_, id)| Term::from_field_text(f.trace_id, hex_into(&mut hex, id))),
    );
    let q = BooleanQuery::new(vec![
        (Occur::Must, Box::new(ids) as Box<dyn Query>),
        (Occur::Must, query.box_clone()),
    ]);
    for part in parts {
        let searcher = part.searcher();
        let docs = searcher.search(&q, &DocSetCollector).map_err(storage_err)?;
        let mut buf = String::new();
        let mut columns: HashMap<u32, Option<tantivy::columnar::StrColumn>> = HashMap::new();
        for addr in docs {
            let col = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    searcher
                        .segment_reader(addr.segment_ord)
                        .fast_fields()
                        .str(span_names::TRACE_ID)
                        .map_err(storage_err)?,
                ),
            };
            let Some(col) = col.as_ref() else { continue };
            let Some(ord) = col.term_ords(addr.doc_id).next() else {
                continue;
            };
            buf.clear();
            if col.ord_to_str(ord, &mut buf).map_err(storage_err)? {
                let mut id = [0u8; 16];
                if hex::decode_to_slice(&buf, &mut id).is_ok() {
                    found.insert(id);
                }
            }
        }
    }
    Ok(found)
}
