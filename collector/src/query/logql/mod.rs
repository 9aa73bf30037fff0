//! LogQL, the subset Grafana's Loki data source needs: parsing
//! ([`parse`]) and evaluation against a [`crate::query::LogStore`]
//! ([`eval::log_query`], [`eval::metric_query`]).
//!
//! Pure: no tantivy, no HTTP. Layout:
//!
//! ```text
//! lexer.rs     tokens, strings, numbers, durations
//! ast.rs       the syntax tree
//! parser.rs    recursive descent; unsupported constructs → LogqlError::Unsupported
//! labels.rs    the Loki label model of a stored record (shared with index/)
//! pipeline.rs  line filters, json/logfmt/regexp, label filters, drop/keep
//! metric.rs    vector aggregations and arithmetic over per-step series
//! eval.rs      store pushdown, streams, range aggregations (fast counts or scans)
//! ```
//!
//! Supported: stream selectors `= != =~ !~`; line filters `|= != |~ !~`
//! (with `or`); `| json`, `| logfmt`, `| regexp "…"`; label filters with
//! strings, numbers and durations joined by `and`/`,`/`or`; `| drop`, `| keep`;
//! `count_over_time`, `rate`, `bytes_over_time`, `bytes_rate`; `sum`, `avg`,
//! `min`, `max`, `count`, `topk`, `bottomk` with `by`/`without`; `+ - * / % ^`
//! between metric expressions, numbers and `vector(x)`.

pub mod ast;
pub mod eval;
pub mod labels;
pub mod lexer;
pub mod metric;
pub mod parser;
pub mod pipeline;

pub use ast::Expr;
pub use parser::parse;

use crate::query::QueryError;

/// Why a LogQL query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum LogqlError {
    /// Bad syntax or a bad value (position is a byte offset into the query).
    #[error("parse error at line 1, col {}: {msg}", .pos + 1)]
    Parse { pos: usize, msg: String },
    /// Valid LogQL that Skein does not implement.
    #[error("unsupported LogQL: {0} is not supported by Skein")]
    Unsupported(String),
    /// The query would exceed a bound (series, records, buckets).
    #[error("{0}")]
    Limit(String),
    /// A parser failed on lines that reached a metric.
    #[error("{0}")]
    Pipeline(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] QueryError),
}

impl LogqlError {
    pub fn parse(pos: usize, msg: impl Into<String>) -> Self {
        LogqlError::Parse {
            pos,
            msg: msg.into(),
        }
    }
}
