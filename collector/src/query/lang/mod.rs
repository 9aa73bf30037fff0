//! The trace search language: text → validated [`Expr`] over span fields.
//!
//! ```text
//! service=checkout AND (http.status_code>=500 OR error=true)
//!   AND NOT operation="GET /health" AND duration>250ms
//! ```
//!
//! - Fields: `service` (also `service.name`), `operation`, `kind` (also
//!   `span.kind`), `status`, `duration`, `trace_id`, and any span or
//!   resource attribute by its dotted name (quote names that clash with the
//!   built-in fields or hold spaces: `"duration" = x`).
//! - Operators: `=`, `!=` (text; `*` is a wildcard), `=~`, `!~` (regex over
//!   the whole value), `<`, `<=`, `>`, `>=` (numbers for attributes,
//!   durations for `duration`).
//! - `AND`, `OR`, `NOT` (any case; NOT binds tightest, then AND, then OR),
//!   parentheses. Every condition of an expression is tested against one and
//!   the same span; a trace matches when at least one of its spans does.
//!
//! Owns the lexer, the parser, the syntax tree and the errors with their
//! character positions. Pure: it must not touch tantivy, HTTP or storage;
//! `index/` compiles the tree into index queries.

mod ast;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

pub use ast::{CmpOp, Expr, Pred, SpanStatus, TextField, TextMatch};
pub use parser::{parse, parse_duration};

/// Why a query did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {pos}: {message}")]
pub struct ParseError {
    /// 0-based character offset into the query text.
    pub pos: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(pos: usize, message: impl Into<String>) -> Self {
        ParseError {
            pos,
            message: message.into(),
        }
    }
}
