//! The storage seam between the query side (HTTP APIs) and the storage engine.
//!
//! Owns the query types ([`TraceQuery`], [`LogQuery`], the label selections
//! in `select.rs`), the record types the store hands back ([`SpanRecord`],
//! [`LogRow`]), the traits the API layer is written against ([`TraceStore`],
//! [`LogStore`]) and the LogQL language (`logql/`, pure). It must not know
//! about tantivy, HTTP or JSON shapes: `index/` implements the traits, `api/`
//! consumes them.

pub mod lang;
pub mod logql;
mod model;
mod search;
mod select;

pub use model::*;
pub use search::{SearchCursor, TracePage, TraceSearch, TraceSummary};
pub use select::*;
