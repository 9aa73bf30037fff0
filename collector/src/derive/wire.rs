//! A borrowing scanner over the protobuf bytes of an
//! `ExportTraceServiceRequest`: for each span it yields only what the
//! dependency graph and the RED metrics need ([`SpanView`]), without
//! allocating or decoding attributes, events and links it does not look at.
//!
//! The WAL holds requests that `ingest/` already decoded and validated, so a
//! malformed payload is not expected; if one shows up the scan stops and
//! reports it (`None`), and the caller counts it.

use crate::wire::{fields, Value};

/// OTLP `Span.SpanKind` values.
pub mod kind {
    pub const UNSPECIFIED: i32 = 0;
    pub const INTERNAL: i32 = 1;
    pub const SERVER: i32 = 2;
    pub const CLIENT: i32 = 3;
    pub const PRODUCER: i32 = 4;
    pub const CONSUMER: i32 = 5;
}

/// OTLP `Status.StatusCode::Error`.
pub const STATUS_ERROR: i32 = 2;

/// The fields of one span the derive processors read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanView<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    pub name: &'a str,
    pub kind: i32,
    pub start_ns: u64,
    pub end_ns: u64,
    /// OTLP status code (0 unset, 1 ok, 2 error).
    pub status: i32,
    /// Name of the called peer for an uninstrumented callee, by precedence:
    /// `peer.service`, `server.address`, `net.peer.name`, `db.name`, `db.system`.
    pub peer: Option<&'a str>,
    /// `db.system` or `db.name` is set: the peer is a database.
    pub database: bool,
}

impl SpanView<'_> {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// Peer attributes, lowest rank wins.
const PEER_KEYS: [&[u8]; 5] = [
    b"peer.service",
    b"server.address",
    b"net.peer.name",
    b"db.name",
    b"db.system",
];

/// Call `f(service, span)` for every span of `payload`, in wire order.
/// `None` when the payload is not well-formed protobuf (spans before the
/// damage may already have been passed to `f`).
pub fn for_each_span<'a>(
    payload: &'a [u8],
    mut f: impl FnMut(&'a str, &SpanView<'a>),
) -> Option<()> {
    fields(payload, |field, value| {
        let Value::Bytes(resource_spans) = value else {
            return Some(());
        };
        if field != 1 {
            return Some(());
        }
        // First the resource (its position among the fields is free), then the spans.
        let mut service = "unknown_service";
        fields(resource_spans, |field, value| {
            if let (1, Value::Bytes(resource)) = (field, value) {
                service = resource_service(resource)?.unwrap_or(service);
            }
            Some(())
        })?;
        fields(resource_spans, |field, value| match (field, value) {
            (2, Value::Bytes(scope_spans)) => fields(scope_spans, |field, value| {
                if let (2, Value::Bytes(span)) = (field, value) {
                    f(service, &parse_span(span)?);
                }
                Some(())
            }),
            _ => Some(()),
        })
    })
}

/// `service.name` of a `Resource`, if it is a non-empty string.
fn resource_service(resource: &[u8]) -> Option<Option<&str>> {
    let mut found = None;
    fields(resource, |field, value| {
        if let (1, Value::Bytes(kv)) = (field, value) {
            if let (b"service.name", Some(v)) = key_value(kv)? {
                if !v.is_empty() {
                    found = Some(v);
                }
            }
        }
        Some(())
    })?;
    Some(found)
}

fn parse_span(bytes: &[u8]) -> Option<SpanView<'_>> {
    let mut span = SpanView::default();
    let mut peer_rank = usize::MAX;
    fields(bytes, |field, value| {
        match (field, value) {
            (1, Value::Bytes(b)) => span.trace_id = b,
            (2, Value::Bytes(b)) => span.span_id = b,
            (4, Value::Bytes(b)) => span.parent_span_id = b,
            (5, Value::Bytes(b)) => span.name = std::str::from_utf8(b).ok()?,
            (6, Value::Varint(v)) => span.kind = v as i32,
            (7, Value::Fixed64(v)) => span.start_ns = v,
            (8, Value::Fixed64(v)) => span.end_ns = v,
            (9, Value::Bytes(kv)) => {
                let (key, value) = key_value(kv)?;
                if let Some(rank) = PEER_KEYS.iter().position(|k| *k == key) {
                    if rank >= 3 {
                        span.database = true;
                    }
                    if let Some(v) = value.filter(|v| !v.is_empty()) {
                        if rank < peer_rank {
                            peer_rank = rank;
                            span.peer = Some(v);
                        }
                    }
                }
            }
            (15, Value::Bytes(status)) => {
                fields(status, |field, value| {
                    if let (3, Value::Varint(code)) = (field, value) {
                        span.status = code as i32;
                    }
                    Some(())
                })?;
            }
            _ => {}
        }
        Some(())
    })?;
    Some(span)
}

/// A `KeyValue`: its key and, when the value is a string, the string;
/// `None` for a malformed message.
fn key_value(kv: &[u8]) -> Option<(&[u8], Option<&str>)> {
    let mut key: &[u8] = &[];
    let mut text = None;
    fields(kv, |field, value| {
        match (field, value) {
            (1, Value::Bytes(k)) => key = k,
            (2, Value::Bytes(any)) => fields(any, |field, value| {
                if let (1, Value::Bytes(s)) = (field, value) {
                    text = std::str::from_utf8(s).ok();
                }
                Some(())
            })?,
            _ => {}
        }
        Some(())
    })?;
    Some((key, text))
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    use super::*;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    #[test]
    fn reads_the_fields_it_needs() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "GET /x".into(),
            kind: kind::CLIENT,
            start_time_unix_nano: 10,
            end_time_unix_nano: 25,
            attributes: vec![
                kv("http.status_code", any_value::Value::IntValue(500)),
                kv("net.peer.name", s("db.local")),
                kv("peer.service", s("payments")),
                kv("db.system", s("postgresql")),
            ],
            status: Some(Status {
                code: STATUS_ERROR,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("host", s("h")), kv("service.name", s("api"))],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span.clone(), Span::default()],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span {
                            name: "n".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        let bytes = req.encode_to_vec();
        let mut seen = Vec::new();
        for_each_span(&bytes, |service, v| seen.push((service.to_string(), *v))).unwrap();
        assert_eq!(seen.len(), 3);
        let (service, v) = &seen[0];
        assert_eq!(service, "api");
        assert_eq!(v.trace_id, &[1; 16]);
        assert_eq!(v.span_id, &[2; 8]);
        assert_eq!(v.parent_span_id, &[3; 8]);
        assert_eq!(
            (v.name, v.kind, v.duration_ns()),
            ("GET /x", kind::CLIENT, 15)
        );
        assert_eq!(v.status, STATUS_ERROR);
        assert_eq!(v.peer, Some("payments"), "peer.service ranks first");
        assert!(v.database);
        assert_eq!(seen[1].1.kind, kind::UNSPECIFIED);
        assert_eq!(seen[2].0, "unknown_service");

        assert!(for_each_span(&bytes[..bytes.len() - 3], |_, _| {}).is_none());
        assert!(for_each_span(&[0x0a, 0xff], |_, _| {}).is_none());
    }
}
