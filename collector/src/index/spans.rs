//! Span documents: one per span, built from a decoded
//! `ExportTraceServiceRequest` with reused buffers, and the stored one-span
//! `ResourceSpans` decoded back into a [`SpanRecord`].
//!
//! The stored bytes are assembled by hand from pieces encoded once per
//! resource and per scope (protobuf lets fields come in any order and
//! concatenates length-delimited messages), so the resource is not cloned or
//! re-encoded for every span.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, ResourceSpans};
use prost::Message;
use tantivy::TantivyDocument;

use super::attrs::{hex_into, TagList};
use super::catalog::{svc_op_term, Catalog};
use super::schema::SpanFields;
use super::wire::leaf_items;
use crate::query::{service_name, SpanKind, SpanRecord};

/// Prefix of the resource tag that is not indexed as a tag (see the service field).
const SERVICE_TAG: &str = "service.name=";

/// Reusable state for turning requests into span documents.
pub(crate) struct SpanDocBuilder {
    f: SpanFields,
    res_tags: TagList,
    span_tags: TagList,
    /// Encoded `ResourceSpans` field 1 (resource) + field 3 (schema_url).
    res_part: Vec<u8>,
    /// Encoded `ScopeSpans` field 1 (scope) + field 3 (schema_url).
    scope_part: Vec<u8>,
    raw: Vec<u8>,
    hex: String,
    term: String,
}

impl SpanDocBuilder {
    pub fn new(f: SpanFields) -> Self {
        SpanDocBuilder {
            f,
            res_tags: TagList::default(),
            span_tags: TagList::default(),
            res_part: Vec::new(),
            scope_part: Vec::new(),
            raw: Vec::new(),
            hex: String::new(),
            term: String::new(),
        }
    }

    /// Build one document per span of `req` (decoded from `payload`), in
    /// order, and hand each to `emit`.
    pub fn build<E>(
        &mut self,
        req: &ExportTraceServiceRequest,
        payload: &[u8],
        catalog: &Catalog,
        mut emit: impl FnMut(TantivyDocument) -> Result<(), E>,
    ) -> Result<usize, E> {
        let originals = original_items(payload, span_count(req));
        let mut count = 0;
        for rs in &req.resource_spans {
            let attrs = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let service = service_name(attrs);
            self.res_tags.clear();
            self.res_tags.extend_from(attrs);
            self.res_part.clear();
            if let Some(res) = &rs.resource {
                put_message(&mut self.res_part, 1, res);
            }
            put_bytes(&mut self.res_part, 3, rs.schema_url.as_bytes());
            for ss in &rs.scope_spans {
                self.scope_part.clear();
                if let Some(scope) = &ss.scope {
                    put_message(&mut self.scope_part, 1, scope);
                }
                put_bytes(&mut self.scope_part, 3, ss.schema_url.as_bytes());
                for span in &ss.spans {
                    let original = originals.as_ref().and_then(|o| o.get(count).copied());
                    let doc = self.span_doc(service, span, original, catalog);
                    emit(doc)?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    fn span_doc(
        &mut self,
        service: &str,
        span: &opentelemetry_proto::tonic::trace::v1::Span,
        original: Option<&[u8]>,
        catalog: &Catalog,
    ) -> TantivyDocument {
        let f = self.f;
        // Stored form: ResourceSpans { resource, schema_url, scope_spans: [ScopeSpans { scope, schema_url, spans: [span] }] }.
        assemble(
            &mut self.raw,
            &self.res_part,
            &self.scope_part,
            original,
            span,
        );

        self.span_tags.clear();
        self.span_tags.extend_from(&span.attributes);
        let kind = SpanKind::from_otlp(span.kind);
        let status = span.status.as_ref().map(|s| s.code).unwrap_or(0);

        let estimate = 256
            + self.raw.len()
            + self.res_tags.byte_len()
            + self.span_tags.byte_len()
            + 2 * (service.len() + span.name.len());
        let mut doc = TantivyDocument::with_capacity(estimate);
        doc.add_text(f.trace_id, hex_into(&mut self.hex, &span.trace_id));
        doc.add_text(f.service, service);
        doc.add_text(f.name, &span.name);
        doc.add_u64(f.status, status.max(0) as u64);
        doc.add_u64(f.start, span.start_time_unix_nano);
        doc.add_u64(
            f.duration,
            span.end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano),
        );
        // `service.name=` is answered from the service field.
        let res_tags = self.res_tags.iter().filter(|t| !t.starts_with(SERVICE_TAG));
        for t in res_tags.chain(self.span_tags.iter()) {
            doc.add_text(f.tags, t);
        }
        if status == StatusCode::Error as i32 {
            doc.add_text(f.tags, "error=true");
            doc.add_text(f.tags, "otel.status_code=ERROR");
        } else if status == StatusCode::Ok as i32 {
            doc.add_text(f.tags, "otel.status_code=OK");
        }
        if kind != SpanKind::Unspecified {
            self.term.clear();
            self.term.push_str("span.kind=");
            self.term.push_str(kind.as_str());
            doc.add_text(f.tags, &self.term);
        }
        svc_op_term(&mut self.term, service, kind, &span.name);
        doc.add_text(f.svc_op, &self.term);
        doc.add_bytes(f.raw, &self.raw);
        catalog.observe(service, kind, &span.name);
        doc
    }
}

/// Decode a stored one-span `ResourceSpans`.
pub(crate) fn decode_span(raw: &[u8]) -> Result<SpanRecord, String> {
    let rs = ResourceSpans::decode(raw).map_err(|e| e.to_string())?;
    let ss = rs
        .scope_spans
        .into_iter()
        .next()
        .ok_or("stored span has no scope_spans")?;
    let span = ss
        .spans
        .into_iter()
        .next()
        .ok_or("stored span has no span")?;
    Ok(SpanRecord {
        resource: rs.resource.unwrap_or_default(),
        scope: ss.scope,
        span,
    })
}

fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// The wire bytes of each leaf item of `payload`, if there are exactly `expected`.
pub(crate) fn original_items(payload: &[u8], expected: usize) -> Option<Vec<&[u8]>> {
    let mut items = Vec::with_capacity(expected);
    leaf_items(payload, &mut items)?;
    (items.len() == expected).then_some(items)
}

/// `res_part` + field 2 { `scope_part` + field 2 { item } }: a one-item
/// `ResourceSpans`/`ResourceLogs`. The item's original bytes are copied when
/// known, else it is encoded.
pub(crate) fn assemble(
    raw: &mut Vec<u8>,
    res_part: &[u8],
    scope_part: &[u8],
    original: Option<&[u8]>,
    item: &impl Message,
) {
    let item_len = original.map_or_else(|| item.encoded_len(), <[u8]>::len);
    let inner_len = scope_part.len() + field_len(item_len);
    raw.clear();
    raw.reserve(res_part.len() + field_len(inner_len));
    raw.extend_from_slice(res_part);
    put_header(raw, 2, inner_len);
    raw.extend_from_slice(scope_part);
    put_header(raw, 2, item_len);
    match original {
        Some(bytes) => raw.extend_from_slice(bytes),
        // Encoding into a Vec cannot run out of space.
        None => {
            let _ = item.encode(raw);
        }
    }
}

/// Size of a length-delimited field with a tag in 1..=15 and `len` content bytes.
pub(crate) fn field_len(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// Key (tag 1..=15, wire type 2) and length prefix.
pub(crate) fn put_header(buf: &mut Vec<u8>, tag: u8, len: usize) {
    buf.push((tag << 3) | 2);
    // Writing into a Vec cannot run out of space.
    let _ = prost::encode_length_delimiter(len, buf);
}

/// A length-delimited message field.
pub(crate) fn put_message(buf: &mut Vec<u8>, tag: u8, msg: &impl Message) {
    put_header(buf, tag, msg.encoded_len());
    let _ = msg.encode(buf);
}

/// A bytes/string field, omitted when empty (proto3 default).
pub(crate) fn put_bytes(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_header(buf, tag, bytes.len());
        buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prometheus::IntCounter;
    use tantivy::schema::Value;

    use super::*;

    /// Stored bytes decode to the same record whether the original bytes
    /// were found in the payload or the span had to be re-encoded.
    #[test]
    fn stored_form_with_and_without_original_bytes() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Default::default()),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![
                        Span {
                            name: "a".into(),
                            trace_id: vec![1; 16],
                            ..Default::default()
                        },
                        Span {
                            name: "b".into(),
                            ..Default::default()
                        },
                    ],
                    schema_url: "s".into(),
                }],
                schema_url: "r".into(),
            }],
        };
        let payload = req.encode_to_vec();
        let (_, f) = SpanFields::build();
        let catalog = Catalog::new(10, IntCounter::new("o", "o").unwrap());
        let mut builder = SpanDocBuilder::new(f);
        for bytes in [payload.as_slice(), &[]] {
            let mut got = Vec::new();
            builder
                .build(&req, bytes, &catalog, |doc| {
                    let raw = doc.get_first(f.raw).and_then(|v| v.as_bytes()).unwrap();
                    got.push(decode_span(raw).unwrap());
                    Ok::<(), ()>(())
                })
                .unwrap();
            let names: Vec<&str> = got.iter().map(|r| r.span.name.as_str()).collect();
            assert_eq!(names, ["a", "b"]);
            assert_eq!(got[0].span, req.resource_spans[0].scope_spans[0].spans[0]);
            assert!(got[0].scope.is_none());
        }
    }
}
