//! The label side of [`LogIndex`] for the Loki API: label matchers as tantivy
//! queries over the `labels` field (`name=value` terms), selections in either
//! time direction, fast-field counts per bucket ([`super::log_counts`]), label
//! names and values from the term dictionaries, and `index/stats`.

use std::collections::BTreeSet;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, EmptyQuery, Occur, Query, QueryClone, RegexQuery};
use tantivy::schema::{Field, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument};

use super::log_counts::{CountCollector, Counts};
use super::logs::decode_log;
use super::schema::log_names;
use super::search_logs::LogIndex;
use super::search_spans::{all_of, searchers_overlapping, storage_err, term_query, u64_range};
use crate::query::{
    CountQuery, CountSeries, Direction, FastLabel, LabelMatcher, LogRow, LogSelect, LogStats,
    MatchOp, QueryError, ID_LABELS,
};

/// Most label values listed for one name.
pub(crate) const MAX_LABEL_VALUES: usize = 5000;

fn not(q: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
        (Occur::MustNot, q),
    ]))
}

fn regex(field: Field, pattern: &str) -> Result<Box<dyn Query>, QueryError> {
    RegexQuery::from_pattern(pattern, field)
        .map(|q| Box::new(q) as Box<dyn Query>)
        .map_err(|e| QueryError::Invalid(format!("regular expression {pattern:?}: {e}")))
}

impl LogIndex {
    /// The documents a matcher selects (absent label = `""`).
    fn matcher_query(&self, m: &LabelMatcher) -> Result<Box<dyn Query>, QueryError> {
        if !m.pushable() {
            return Err(QueryError::Invalid(format!(
                "{} cannot be answered from the index",
                m.display()
            )));
        }
        let positive = matches!(m.op, MatchOp::Eq | MatchOp::Re);
        let (field, name_prefix, id) = if ID_LABELS.contains(&m.name.as_str()) {
            let f = if m.name == "trace_id" {
                self.f.trace_id
            } else {
                self.f.span_id
            };
            (f, String::new(), true)
        } else {
            (self.f.labels, format!("{}=", regex::escape(&m.name)), false)
        };
        // P: documents whose value satisfies the positive form of the matcher.
        let value_query: Box<dyn Query> = match m.op {
            MatchOp::Eq | MatchOp::Neq if m.value.is_empty() => Box::new(EmptyQuery),
            MatchOp::Eq | MatchOp::Neq if id => term_query(field, &m.value.to_ascii_lowercase()),
            MatchOp::Eq | MatchOp::Neq => term_query(field, &format!("{}={}", m.name, m.value)),
            MatchOp::Re | MatchOp::Nre => regex(field, &format!("{name_prefix}(?:{})", m.value))?,
        };
        // The positive form matches the absent label iff it matches "".
        let positive_matches_empty = if positive {
            m.matches(None)
        } else {
            !m.matches(None)
        };
        let set = if positive_matches_empty {
            let has = regex(field, &format!("{name_prefix}.+"))?;
            Box::new(BooleanQuery::union(vec![value_query, not(has)])) as Box<dyn Query>
        } else {
            value_query
        };
        Ok(if positive { set } else { not(set) })
    }

    fn selection_query(&self, sel: &LogSelect) -> Result<Box<dyn Query>, QueryError> {
        let mut clauses = Vec::with_capacity(sel.matchers.len() + 1);
        for m in sel.matchers.iter().filter(|m| m.pushable()) {
            clauses.push(self.matcher_query(m)?);
        }
        clauses.extend(u64_range(
            self.f.timestamp,
            Some(sel.start_unix_nano),
            Some(sel.end_unix_nano),
        ));
        Ok(all_of(clauses))
    }

    fn searchers(&self, start: u64, end: u64) -> Result<Vec<Searcher>, QueryError> {
        searchers_overlapping(
            &self.set.snapshot(),
            log_names::TIMESTAMP,
            Some(start),
            Some(end),
        )
    }

    pub(crate) fn select(
        &self,
        sel: &LogSelect,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<LogRow>, QueryError> {
        let query = self.selection_query(sel)?;
        if limit == 0 || sel.start_unix_nano > sel.end_unix_nano {
            return Ok(Vec::new());
        }
        let searchers = self.searchers(sel.start_unix_nano, sel.end_unix_nano)?;
        let order = match direction {
            Direction::Backward => Order::Desc,
            Direction::Forward => Order::Asc,
        };
        let mut hits: Vec<(u64, usize, DocAddress)> = Vec::new();
        for (i, searcher) in searchers.iter().enumerate() {
            let top = searcher
                .search(
                    &*query,
                    &TopDocs::with_limit(limit)
                        .order_by_fast_field::<u64>(log_names::TIMESTAMP, order),
                )
                .map_err(storage_err)?;
            hits.extend(top.into_iter().map(|(v, a)| (v.unwrap_or(0), i, a)));
        }
        match direction {
            Direction::Backward => {
                hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)))
            }
            Direction::Forward => {
                hits.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)))
            }
        }
        hits.truncate(limit);
        let mut out = Vec::with_capacity(hits.len());
        for (_, i, addr) in hits {
            let doc: TantivyDocument = searchers[i].doc(addr).map_err(storage_err)?;
            let Some(raw) = doc.get_first(self.f.raw).and_then(|v| v.as_bytes()) else {
                continue;
            };
            match decode_log(raw) {
                Ok(row) => out.push(row),
                Err(e) => tracing::warn!(error = %e, "stored log record undecodable; skipped"),
            }
        }
        Ok(out)
    }

    fn collect_counts(
        &self,
        sel: &LogSelect,
        collector: &CountCollector,
    ) -> Result<(Counts, u64), QueryError> {
        let query = self.selection_query(sel)?;
        let mut total = Counts::default();
        let mut chunks = 0;
        if sel.start_unix_nano > sel.end_unix_nano {
            return Ok((total, 0));
        }
        let mut fruits = Vec::new();
        for searcher in self.searchers(sel.start_unix_nano, sel.end_unix_nano)? {
            let counts = searcher.search(&*query, collector).map_err(storage_err)?;
            if !counts.groups.is_empty() {
                chunks += 1;
            }
            fruits.push(counts);
        }
        use tantivy::collector::Collector;
        if !fruits.is_empty() {
            total = collector.merge_fruits(fruits).map_err(storage_err)?;
        }
        if total.overflow {
            return Err(QueryError::Invalid(format!(
                "too many series × time buckets (more than {}); use a larger step or group by fewer labels",
                super::log_counts::MAX_CELLS
            )));
        }
        Ok((total, chunks))
    }

    pub(crate) fn counts(&self, q: &CountQuery) -> Result<Vec<CountSeries>, QueryError> {
        if let Some(m) = q.matchers.iter().find(|m| !m.pushable()) {
            return Err(QueryError::Invalid(format!(
                "{} cannot be counted from the index",
                m.display()
            )));
        }
        let (start, end) = q.buckets.bounds();
        let sel = LogSelect {
            matchers: q.matchers.clone(),
            start_unix_nano: start,
            end_unix_nano: end,
        };
        let collector = CountCollector {
            buckets: q.buckets,
            by_service: q.group_by.contains(&FastLabel::ServiceName),
            by_level: q.group_by.contains(&FastLabel::Level),
        };
        let (counts, _) = self.collect_counts(&sel, &collector)?;
        let mut out: Vec<CountSeries> = counts
            .groups
            .into_iter()
            .map(|((service, level), counts)| CountSeries {
                group: q
                    .group_by
                    .iter()
                    .map(|l| match l {
                        FastLabel::ServiceName => service.clone().unwrap_or_default(),
                        FastLabel::Level => level.unwrap_or_default().to_string(),
                    })
                    .collect(),
                counts,
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }

    pub(crate) fn stats(&self, sel: &LogSelect) -> Result<LogStats, QueryError> {
        let collector = CountCollector {
            buckets: crate::query::Buckets {
                origin: sel.start_unix_nano.saturating_sub(1),
                width: (sel.end_unix_nano - sel.start_unix_nano.min(sel.end_unix_nano))
                    .saturating_add(1),
                count: 1,
            },
            by_service: true,
            by_level: true,
        };
        let (counts, chunks) = self.collect_counts(sel, &collector)?;
        Ok(LogStats {
            streams: counts.groups.len() as u64,
            chunks,
            entries: counts.groups.values().map(|v| v.iter().sum::<u64>()).sum(),
            bytes: counts.bytes,
        })
    }

    /// Label names from the `labels` term dictionaries of the partitions
    /// overlapping `[start, end]`, skipping over each name's values.
    pub(crate) fn label_names(&self, start: u64, end: u64) -> Result<Vec<String>, QueryError> {
        let mut names = BTreeSet::new();
        for searcher in self.searchers(start, end)? {
            for seg in searcher.segment_readers() {
                let inv = seg.inverted_index(self.f.labels).map_err(storage_err)?;
                let dict = inv.terms();
                let mut from: Vec<u8> = Vec::new();
                loop {
                    let mut stream = dict.range().ge(&from).into_stream().map_err(storage_err)?;
                    if !stream.advance() {
                        break;
                    }
                    let key = stream.key();
                    let Some(eq) = key.iter().position(|b| *b == b'=') else {
                        // not a name=value term: skip it
                        from = key.to_vec();
                        from.push(0);
                        continue;
                    };
                    names.insert(String::from_utf8_lossy(&key[..eq]).into_owned());
                    from = key[..eq].to_vec();
                    from.push(b'=' + 1);
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of `name` in the partitions overlapping the window; with
    /// matchers, only values of records they select.
    pub(crate) fn label_values(
        &self,
        name: &str,
        sel: &LogSelect,
    ) -> Result<Vec<String>, QueryError> {
        let prefix = format!("{name}=");
        let mut upper = name.as_bytes().to_vec();
        upper.push(b'=' + 1);
        let filter = if sel.matchers.iter().any(|m| m.pushable()) {
            Some(self.selection_query(sel)?)
        } else {
            None
        };
        let mut values = BTreeSet::new();
        for searcher in self.searchers(sel.start_unix_nano, sel.end_unix_nano)? {
            let mut candidates = BTreeSet::new();
            for seg in searcher.segment_readers() {
                let inv = seg.inverted_index(self.f.labels).map_err(storage_err)?;
                let mut stream = inv
                    .terms()
                    .range()
                    .ge(prefix.as_bytes())
                    .lt(&upper)
                    .into_stream()
                    .map_err(storage_err)?;
                while stream.advance() && candidates.len() < MAX_LABEL_VALUES {
                    let v = &stream.key()[prefix.len()..];
                    candidates.insert(String::from_utf8_lossy(v).into_owned());
                }
            }
            for v in candidates {
                if values.contains(&v) {
                    continue;
                }
                let keep = match &filter {
                    None => true,
                    Some(f) => {
                        let q = BooleanQuery::intersection(vec![
                            f.box_clone(),
                            term_query(self.f.labels, &format!("{prefix}{v}")),
                        ]);
                        searcher.search(&q, &Count).map_err(storage_err)? > 0
                    }
                };
                if keep {
                    values.insert(v);
                }
                if values.len() >= MAX_LABEL_VALUES {
                    return Ok(values.into_iter().collect());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}
