//! Builders for the unit tests of this module: spans as real OTLP records
//! with times in milliseconds relative to a fixed instant.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::tree::SpanId;
use crate::query::SpanRecord;

pub const T0: u64 = 1_700_000_000_000_000_000;
pub const MS: i64 = 1_000_000;

/// `T0 + ms`.
pub fn at(ms: i64) -> u64 {
    (T0 as i64 + ms * MS) as u64
}

/// Span id `n` (first byte set so it is never all zeroes).
pub fn id(n: u8) -> SpanId {
    [0xa0, 0, 0, 0, 0, 0, 0, n]
}

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Span `id(n)` of service `service`, operation `op<n>`, kind INTERNAL,
/// child of `id(parent)`, from `T0 + start` to `T0 + end` ms.
pub fn sp(n: u8, parent: Option<u8>, service: &str, start: i64, end: i64) -> SpanRecord {
    SpanRecord {
        resource: Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        },
        scope: None,
        span: Span {
            trace_id: vec![7; 16],
            span_id: id(n).to_vec(),
            parent_span_id: parent.map(|p| id(p).to_vec()).unwrap_or_default(),
            name: format!("op{n}"),
            kind: 1,
            start_time_unix_nano: at(start),
            end_time_unix_nano: at(end),
            ..Default::default()
        },
    }
}

/// Set the OTLP kind (2 server, 3 client, 4 producer, 5 consumer).
pub fn kind(mut r: SpanRecord, kind: i32) -> SpanRecord {
    r.span.kind = kind;
    r
}

pub fn named(mut r: SpanRecord, name: &str) -> SpanRecord {
    r.span.name = name.into();
    r
}

/// Add a resource attribute (e.g. `service.instance.id`).
pub fn res(mut r: SpanRecord, key: &str, value: &str) -> SpanRecord {
    r.resource.attributes.push(kv(key, value));
    r
}
