//! Compiles a search-language [`Expr`] into one tantivy query over the span
//! index. Everything is pushed down; nothing is filtered after the search:
//!
//! | predicate | index access |
//! |---|---|
//! | `service`, `operation`, `trace_id` | term / regex query on their keyword fields |
//! | attributes `=`, `=~`, `*` | term / regex query on `tags` (`key=value` terms; regex `key=(?:…)`) |
//! | attributes `<`, `>`, … | an FST automaton over the `key=` terms whose value reads as a number in range ([`NumericTerms`]) |
//! | `duration`, `status` | range query on the fast fields |
//! | `kind` | the `span.kind=` tag |
//! | `NOT`, `!=` | `MustNot` under a match-all (attributes: under "has the attribute") |
//!
//! Must not touch HTTP shapes or the cursor logic (see `search_traces.rs`).

use std::ops::Bound;
use std::sync::Arc;

use tantivy::query::{
    AllQuery, AutomatonWeight, BooleanQuery, EmptyQuery, EnableScoring, Occur, Query, RegexQuery,
    Weight,
};
use tantivy::schema::Field;
use tantivy::Term;
use tantivy_fst::Automaton;

use super::schema::SpanFields;
use super::search_spans::term_query;
use crate::query::lang::{CmpOp, Expr, Pred, TextField, TextMatch};
use crate::query::{QueryError, SpanKind};

/// The tantivy query selecting the spans `expr` matches.
pub(crate) fn compile(f: &SpanFields, expr: &Expr) -> Result<Box<dyn Query>, QueryError> {
    match expr {
        Expr::And(parts) => {
            let mut clauses = Vec::with_capacity(parts.len() + 1);
            for p in parts {
                match p {
                    Expr::Not(inner) => clauses.push((Occur::MustNot, compile(f, inner)?)),
                    other => clauses.push((Occur::Must, compile(f, other)?)),
                }
            }
            if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Ok(Box::new(BooleanQuery::new(clauses)))
        }
        Expr::Or(parts) => {
            let clauses = parts
                .iter()
                .map(|p| Ok((Occur::Should, compile(f, p)?)))
                .collect::<Result<Vec<_>, QueryError>>()?;
            Ok(Box::new(BooleanQuery::new(clauses)))
        }
        Expr::Not(inner) => Ok(not(compile(f, inner)?)),
        Expr::Pred(p) => pred(f, p),
    }
}

fn not(q: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, q),
    ]))
}

fn regex(field: Field, pattern: &str) -> Result<Box<dyn Query>, QueryError> {
    RegexQuery::from_pattern(pattern, field)
        .map(|q| Box::new(q) as Box<dyn Query>)
        .map_err(|e| QueryError::Invalid(format!("pattern \"{pattern}\": {e}")))
}

/// `key=…` regex over the tags field for a whole-value pattern.
fn tag_pattern(key: &str, value_pattern: &str) -> String {
    format!("{}=(?:{value_pattern})", regex_syntax::escape(key))
}

fn pred(f: &SpanFields, p: &Pred) -> Result<Box<dyn Query>, QueryError> {
    match p {
        Pred::Text {
            field,
            matches,
            negated,
        } => {
            let (index_field, key) = match field {
                TextField::Service => (f.service, None),
                // The index answers `service.name` from the service field only.
                TextField::Attr(k) if k == "service.name" => (f.service, None),
                TextField::Operation => (f.name, None),
                TextField::TraceId => (f.trace_id, None),
                TextField::Attr(k) => (f.tags, Some(k.as_str())),
            };
            let positive = match (key, matches) {
                (None, TextMatch::Exact(v)) => term_query(index_field, v),
                (None, TextMatch::Pattern(re)) => regex(index_field, re)?,
                (Some(k), TextMatch::Exact(v)) => term_query(index_field, &format!("{k}={v}")),
                (Some(k), TextMatch::Pattern(re)) => regex(index_field, &tag_pattern(k, re))?,
            };
            match (negated, key) {
                (false, _) => Ok(positive),
                (true, None) => Ok(not(positive)),
                // `a != x`: the span has `a`, with another value.
                (true, Some(k)) => Ok(Box::new(BooleanQuery::new(vec![
                    (Occur::Must, regex(f.tags, &tag_pattern(k, ".*"))?),
                    (Occur::MustNot, positive),
                ]))),
            }
        }
        Pred::Number { key, op, value } => Ok(Box::new(NumericTagQuery {
            field: f.tags,
            automaton: Arc::new(NumericTerms::new(key, *op, *value)),
        })),
        Pred::Duration { op, ns } => Ok(u64_cmp(f.duration, *op, *ns)),
        Pred::Status { status, negated } => {
            let q = u64_cmp(f.status, CmpOp::Eq, status.code());
            Ok(if *negated { not(q) } else { q })
        }
        Pred::Kind { kind, negated } => {
            let positive = match kind {
                // Unspecified spans carry no `span.kind` tag.
                SpanKind::Unspecified => not(regex(f.tags, "span\\.kind=.*")?),
                k => term_query(f.tags, &format!("span.kind={}", k.as_str())),
            };
            Ok(if *negated { not(positive) } else { positive })
        }
    }
}

/// `field <op> v` over a u64 fast field.
pub(crate) fn u64_cmp(field: Field, op: CmpOp, v: u64) -> Box<dyn Query> {
    let range = |lo: Bound<u64>, hi: Bound<u64>| -> Box<dyn Query> {
        let term = |b: Bound<u64>| match b {
            Bound::Included(x) => Bound::Included(Term::from_field_u64(field, x)),
            Bound::Excluded(x) => Bound::Excluded(Term::from_field_u64(field, x)),
            Bound::Unbounded => Bound::Unbounded,
        };
        Box::new(tantivy::query::RangeQuery::new(term(lo), term(hi)))
    };
    match op {
        CmpOp::Eq => range(Bound::Included(v), Bound::Included(v)),
        CmpOp::Ne => not(range(Bound::Included(v), Bound::Included(v))),
        CmpOp::Lt if v == 0 => Box::new(EmptyQuery),
        CmpOp::Lt => range(Bound::Unbounded, Bound::Included(v - 1)),
        CmpOp::Le => range(Bound::Unbounded, Bound::Included(v)),
        CmpOp::Gt if v == u64::MAX => Box::new(EmptyQuery),
        CmpOp::Gt => range(Bound::Included(v + 1), Bound::Unbounded),
        CmpOp::Ge => range(Bound::Included(v), Bound::Unbounded),
    }
}

/// Spans with a `key=value` tag whose value reads as a finite number that
/// satisfies the comparison.
#[derive(Debug, Clone)]
struct NumericTagQuery {
    field: Field,
    automaton: Arc<NumericTerms>,
}

impl Query for NumericTagQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<NumericTerms>::new(
            self.field,
            self.automaton.clone(),
        )))
    }
}

/// Longest value text considered a number.
const MAX_NUMBER_BYTES: usize = 40;

/// An automaton over index terms: the prefix `key=` exactly, then only
/// number characters, accepting when the value compares true.
#[derive(Debug)]
pub(crate) struct NumericTerms {
    prefix: Vec<u8>,
    op: CmpOp,
    value: f64,
}

impl NumericTerms {
    pub fn new(key: &str, op: CmpOp, value: f64) -> Self {
        let mut prefix = key.as_bytes().to_vec();
        prefix.push(b'=');
        NumericTerms { prefix, op, value }
    }
}

/// Where a term being read stands.
#[derive(Debug, Clone)]
pub(crate) enum NumState {
    /// This many prefix bytes matched.
    Prefix(usize),
    /// In the value; its bytes so far.
    Value(Vec<u8>),
    Dead,
}

impl Automaton for NumericTerms {
    type State = NumState;

    fn start(&self) -> NumState {
        NumState::Prefix(0)
    }

    fn is_match(&self, state: &NumState) -> bool {
        let NumState::Value(v) = state else {
            return false;
        };
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|n| n.is_finite() && self.op.holds(n, self.value))
    }

    fn can_match(&self, state: &NumState) -> bool {
        !matches!(state, NumState::Dead)
    }

    fn accept(&self, state: &NumState, byte: u8) -> NumState {
        match state {
            NumState::Prefix(i) => match self.prefix.get(*i) {
                Some(&b) if b == byte => {
                    if i + 1 == self.prefix.len() {
                        NumState::Value(Vec::new())
                    } else {
                        NumState::Prefix(i + 1)
                    }
                }
                _ => NumState::Dead,
            },
            NumState::Value(v)
                if v.len() < MAX_NUMBER_BYTES
                    && matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') =>
            {
                let mut next = v.clone();
                next.push(byte);
                NumState::Value(next)
            }
            _ => NumState::Dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &NumericTerms, term: &str) -> bool {
        let mut s = a.start();
        for b in term.bytes() {
            s = a.accept(&s, b);
            if !a.can_match(&s) {
                return false;
            }
        }
        a.is_match(&s)
    }

    #[test]
    fn numeric_terms_compare_values_of_one_key() {
        let ge = NumericTerms::new("http.status_code", CmpOp::Ge, 500.0);
        assert!(run(&ge, "http.status_code=500"));
        assert!(run(&ge, "http.status_code=503"));
        assert!(run(&ge, "http.status_code=1e3"));
        assert!(!run(&ge, "http.status_code=404"));
        assert!(!run(&ge, "http.status_code=abc"));
        assert!(!run(&ge, "http.status_code="));
        assert!(!run(&ge, "http.status_code.x=900"));
        assert!(!run(&ge, "http.status=900"));
        let lt = NumericTerms::new("t", CmpOp::Lt, -1.5);
        assert!(run(&lt, "t=-2"));
        assert!(!run(&lt, "t=-1.5"));
        assert!(!run(&lt, "t=NaN"));
        assert!(!run(&lt, "t=-inf"));
    }
}
