//! The storage seam between the query side (HTTP APIs) and the storage engine.
//!
//! Owns the query types ([`TraceQuery`], [`LogQuery`]), the record types the
//! store hands back ([`SpanRecord`], [`LogRow`]) and the traits the API layer is
//! written against ([`TraceStore`], [`LogStore`]). It must not know about
//! tantivy, HTTP or JSON shapes: `index/` implements the traits, `api/`
//! consumes them.

pub mod lang;
mod model;
mod search;

pub use model::*;
pub use search::{SearchCursor, TracePage, TraceSearch, TraceSummary};
