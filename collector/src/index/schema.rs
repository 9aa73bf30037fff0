//! tantivy schemas of the span and log indexes, and the index settings.
//!
//! High-cardinality numbers (start time, duration, timestamps) are FAST only:
//! tantivy answers range queries on fast fields from the columnar data, and
//! skipping the inverted index for them saves one unique term per document.
//! Fieldnorms are off everywhere: nothing is ranked by relevance.
//!
//! Span ids, parent ids and the kind are not indexed on their own: no query
//! needs them (kind is in `svc_op` and the `span.kind=` tag), the stored span
//! has them, and unique span-id terms cost ~20% of indexing throughput and
//! ~40% of the bytes on disk.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, STORED,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::IndexSettings;

/// Span field names (also used by fast-field collectors).
pub(crate) mod span_names {
    pub const TRACE_ID: &str = "trace_id";
    pub const START: &str = "start_unix_nano";
    pub const SERVICE: &str = "service";
    pub const DURATION: &str = "duration_ns";
    pub const STATUS: &str = "status_code";
    /// WAL end-LSN of the record the span came in: the ingest order that
    /// search cursors use as a snapshot.
    pub const LSN: &str = "ingest_lsn";
}

/// Log field names.
pub(crate) mod log_names {
    pub const TIMESTAMP: &str = "timestamp_unix_nano";
    pub const SEVERITY: &str = "severity_number";
    pub const SERVICE: &str = "service";
    pub const BODY_BYTES: &str = "body_bytes";
}

/// Raw-tokenized, not stored, no fieldnorms; optionally a fast (columnar) field.
fn keyword(fast: bool) -> TextOptions {
    let opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    if fast {
        opts.set_fast("raw")
    } else {
        opts
    }
}

fn fast_u64() -> NumericOptions {
    NumericOptions::from(FAST)
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanFields {
    pub trace_id: Field,
    pub service: Field,
    pub name: Field,
    pub status: Field,
    pub start: Field,
    pub duration: Field,
    pub tags: Field,
    /// `service \0 kind \0 operation`, the source of the operations set.
    pub svc_op: Field,
    /// One-span `ResourceSpans`, prost-encoded.
    pub raw: Field,
    /// Fast only: see [`span_names::LSN`].
    pub lsn: Field,
}

impl SpanFields {
    pub fn build() -> (Schema, SpanFields) {
        let mut b = Schema::builder();
        let f = SpanFields {
            trace_id: b.add_text_field(span_names::TRACE_ID, keyword(true)),
            service: b.add_text_field(span_names::SERVICE, keyword(true)),
            name: b.add_text_field("operation", keyword(false)),
            status: b.add_u64_field(span_names::STATUS, fast_u64()),
            start: b.add_u64_field(span_names::START, fast_u64()),
            duration: b.add_u64_field(span_names::DURATION, fast_u64()),
            tags: b.add_text_field("tags", keyword(false)),
            svc_op: b.add_text_field("svc_op", keyword(false)),
            raw: b.add_bytes_field("raw", STORED),
            lsn: b.add_u64_field(span_names::LSN, fast_u64()),
        };
        (b.build(), f)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LogFields {
    pub timestamp: Field,
    pub observed: Field,
    pub severity: Field,
    pub severity_text: Field,
    pub body: Field,
    pub service: Field,
    pub trace_id: Field,
    pub span_id: Field,
    /// One-record `ResourceLogs`, prost-encoded.
    pub raw: Field,
    /// `name=value` of the record's Loki labels (`query::logql::labels`),
    /// except `trace_id`, `span_id` and `severity_number`.
    pub labels: Field,
    /// Size of the body text, for `index/stats`.
    pub body_bytes: Field,
}

impl LogFields {
    pub fn build() -> (Schema, LogFields) {
        let mut b = Schema::builder();
        let body = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                .set_fieldnorms(false),
        );
        let f = LogFields {
            timestamp: b.add_u64_field(log_names::TIMESTAMP, fast_u64()),
            observed: b.add_u64_field("observed_unix_nano", fast_u64()),
            severity: b.add_u64_field(log_names::SEVERITY, fast_u64().set_indexed()),
            severity_text: b.add_text_field("severity_text", keyword(false)),
            body: b.add_text_field("body", body),
            service: b.add_text_field(log_names::SERVICE, keyword(true)),
            trace_id: b.add_text_field("trace_id", keyword(false)),
            span_id: b.add_text_field("span_id", keyword(false)),
            // Not written any more: record and resource attributes are
            // indexed as `labels` (names sanitized), which is what log
            // queries match on; nothing ever queried `tags`. Declared still
            // so the fields after it keep their ids in older partitions.
            raw: {
                b.add_text_field("tags", keyword(false));
                b.add_bytes_field("raw", STORED)
            },
            labels: b.add_text_field("labels", keyword(false)),
            body_bytes: b.add_u64_field(log_names::BODY_BYTES, fast_u64()),
        };
        (b.build(), f)
    }
}

/// Settings of every partition: zstd doc store (the raw spans/records).
pub(crate) fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(3),
        }),
        docstore_blocksize: 32 * 1024,
        ..IndexSettings::default()
    }
}
