//! [`LogIndex`]: the read side of the log partitions ([`LogStore`]).

use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::query::{Query, QueryParser, QueryParserError};
use tantivy::query_grammar::{self, Occur, UserInputAst, UserInputLeaf};
use tantivy::schema::{Field, Schema, Value};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DocAddress, Order, TantivyDocument};

use super::attrs::hex_into;
use super::logs::decode_log;
use super::partition::PartitionSet;
use super::schema::{log_names, LogFields};
use super::search_spans::{all_of, searchers_overlapping, storage_err, term_query, u64_range};
use crate::query::{
    CountQuery, CountSeries, Direction, LogQuery, LogRow, LogSelect, LogStats, LogStore, QueryError,
};

/// Searchable log partitions.
pub struct LogIndex {
    pub(crate) set: Arc<PartitionSet>,
    pub(crate) f: LogFields,
    schema: Schema,
}

impl LogIndex {
    pub(crate) fn new(set: Arc<PartitionSet>, f: LogFields, schema: Schema) -> Self {
        LogIndex { set, f, schema }
    }

    fn query_for(&self, q: &LogQuery) -> Result<Box<dyn Query>, QueryError> {
        let f = self.f;
        let mut clauses = Vec::new();
        if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            clauses.push(parse_text(&self.schema, f.body, text)?);
        }
        if let Some(s) = &q.service {
            clauses.push(term_query(f.service, s));
        }
        if let Some(min) = q.min_severity.filter(|m| *m > 0) {
            clauses.extend(u64_range(f.severity, Some(min as u64), None));
        }
        if let Some(id) = &q.trace_id {
            let mut hex = String::new();
            clauses.push(term_query(f.trace_id, hex_into(&mut hex, id)));
        }
        clauses.extend(u64_range(f.timestamp, q.start_unix_nano, q.end_unix_nano));
        Ok(all_of(clauses))
    }

    fn search(&self, q: &LogQuery) -> Result<Vec<LogRow>, QueryError> {
        // Parse first so a bad query is reported even on an empty store.
        let query = self.query_for(q)?;
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        if let (Some(a), Some(b)) = (q.start_unix_nano, q.end_unix_nano) {
            if a > b {
                return Ok(Vec::new());
            }
        }
        let searchers = searchers_overlapping(
            &self.set.snapshot(),
            log_names::TIMESTAMP,
            q.start_unix_nano,
            q.end_unix_nano,
        )?;
        let mut hits: Vec<(u64, usize, DocAddress)> = Vec::new();
        for (i, searcher) in searchers.iter().enumerate() {
            let top = searcher
                .search(
                    &*query,
                    &TopDocs::with_limit(q.limit)
                        .order_by_fast_field::<u64>(log_names::TIMESTAMP, Order::Desc),
                )
                .map_err(storage_err)?;
            hits.extend(top.into_iter().map(|(v, a)| (v.unwrap_or(0), i, a)));
        }
        hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        hits.truncate(q.limit);
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
}

/// Parse a full-text query over `body` (tantivy syntax: words are ANDed,
/// "phrases", AND/OR/NOT, `-word`). `a AND NOT b` and a query of only
/// negations mean what they say (tantivy alone would match nothing).
fn parse_text(schema: &Schema, body: Field, text: &str) -> Result<Box<dyn Query>, QueryError> {
    let ast = query_grammar::parse_query(text).map_err(|_| {
        QueryError::Invalid(QueryParserError::SyntaxError(text.to_string()).to_string())
    })?;
    let mut parser = QueryParser::new(schema.clone(), vec![body], TokenizerManager::default());
    parser.set_conjunction_by_default();
    parser
        .build_query_from_user_input_ast(lift_negations(ast, true))
        .map_err(|e| QueryError::Invalid(e.to_string()))
}

/// Turn a required clause made only of negations into negations of its
/// parent, and give an all-negative top level something to subtract from.
fn lift_negations(ast: UserInputAst, top: bool) -> UserInputAst {
    let is_not = |o: &Option<Occur>| *o == Some(Occur::MustNot);
    match ast {
        UserInputAst::Clause(children) => {
            let mut out = Vec::with_capacity(children.len());
            for (occur, child) in children {
                match (occur, lift_negations(child, false)) {
                    (None | Some(Occur::Must), UserInputAst::Clause(sub))
                        if !sub.is_empty() && sub.iter().all(|(o, _)| is_not(o)) =>
                    {
                        out.extend(sub)
                    }
                    (o, c) => out.push((o, c)),
                }
            }
            if top && !out.is_empty() && out.iter().all(|(o, _)| is_not(o)) {
                out.push((
                    Some(Occur::Must),
                    UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
                ));
            }
            UserInputAst::Clause(out)
        }
        UserInputAst::Boost(inner, boost) => {
            UserInputAst::Boost(Box::new(lift_negations(*inner, false)), boost)
        }
        leaf => leaf,
    }
}

impl LogStore for LogIndex {
    fn search_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>, QueryError> {
        self.search(query)
    }

    fn select_logs(
        &self,
        sel: &LogSelect,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<LogRow>, QueryError> {
        self.select(sel, limit, direction)
    }

    fn count_logs(&self, q: &CountQuery) -> Result<Vec<CountSeries>, QueryError> {
        self.counts(q)
    }

    fn log_label_names(&self, start: u64, end: u64) -> Result<Vec<String>, QueryError> {
        self.label_names(start, end)
    }

    fn log_label_values(&self, name: &str, sel: &LogSelect) -> Result<Vec<String>, QueryError> {
        self.label_values(name, sel)
    }

    fn log_stats(&self, sel: &LogSelect) -> Result<LogStats, QueryError> {
        self.stats(sel)
    }
}
