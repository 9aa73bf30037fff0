//! A minimal protobuf wire scanner: finds the bytes of each span (or log
//! record) inside an export request, so the stored copy is the exact bytes
//! the client sent (unknown fields included) and nothing is re-encoded.
//!
//! Both `ExportTraceServiceRequest` and `ExportLogsServiceRequest` nest the
//! same way: field 1 (resource spans/logs) → field 2 (scope spans/logs) →
//! field 2 (spans/log records). Repeated fields decode in wire order, so the
//! n-th slice found here is the n-th item prost decoded.

use crate::wire::{fields, Value};

/// Append the bytes of every leaf item (span or log record) of `payload`,
/// in order. `None` when the payload is not well-formed (callers then fall
/// back to re-encoding the decoded item).
pub(crate) fn leaf_items<'a>(payload: &'a [u8], out: &mut Vec<&'a [u8]>) -> Option<()> {
    for_each_field(payload, 1, |resource| {
        for_each_field(resource, 2, |scope| {
            for_each_field(scope, 2, |item| {
                out.push(item);
                Some(())
            })
        })
    })
}

/// Call `f` with the content of every length-delimited field `tag` of `msg`.
fn for_each_field<'a>(
    msg: &'a [u8],
    tag: u64,
    mut f: impl FnMut(&'a [u8]) -> Option<()>,
) -> Option<()> {
    fields(msg, |field, value| match value {
        Value::Bytes(content) if field == tag => f(content),
        _ => Some(()),
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::*;

    #[test]
    fn finds_each_span_in_order() {
        let span = |name: &str| Span {
            name: name.into(),
            start_time_unix_nano: 7,
            ..Default::default()
        };
        let scope = |spans| ScopeSpans {
            spans,
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![scope(vec![span("a"), span("b")]), scope(vec![])],
                    schema_url: "x".into(),
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![scope(vec![span("c")])],
                    ..Default::default()
                },
            ],
        };
        let bytes = req.encode_to_vec();
        let mut items = Vec::new();
        leaf_items(&bytes, &mut items).unwrap();
        let names: Vec<String> = items
            .iter()
            .map(|b| Span::decode(*b).unwrap().name)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let mut none = Vec::new();
        assert!(leaf_items(&bytes[..bytes.len() - 1], &mut none).is_none());
        assert!(leaf_items(&[0x0a, 0xff], &mut none).is_none());
    }
}
