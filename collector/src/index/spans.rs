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
use crate::query::{service_name, SpanKind, SpanRecord};

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

    /// Build one document per span of `req`, in order, and hand each to `emit`.
    pub fn build<E>(
        &mut self,
        req: &ExportTraceServiceRequest,
        catalog: &Catalog,
        mut emit: impl FnMut(TantivyDocument) -> Result<(), E>,
    ) -> Result<usize, E> {
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
                    let doc = self.span_doc(service, span, catalog);
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
        catalog: &Catalog,
    ) -> TantivyDocument {
        let f = self.f;
        // Stored form: ResourceSpans { resource, schema_url, scope_spans: [ScopeSpans { scope, schema_url, spans: [span] }] }.
        let span_len = span.encoded_len();
        let inner_len = self.scope_part.len() + field_len(span_len);
        self.raw.clear();
        self.raw.reserve(self.res_part.len() + field_len(inner_len));
        self.raw.extend_from_slice(&self.res_part);
        put_header(&mut self.raw, 2, inner_len);
        self.raw.extend_from_slice(&self.scope_part);
        put_header(&mut self.raw, 2, span_len);
        // Encoding into a Vec cannot run out of space.
        let _ = span.encode(&mut self.raw);

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
        doc.add_text(f.span_id, hex_into(&mut self.hex, &span.span_id));
        if !span.parent_span_id.is_empty() {
            doc.add_text(f.parent_id, hex_into(&mut self.hex, &span.parent_span_id));
        }
        doc.add_text(f.service, service);
        doc.add_text(f.name, &span.name);
        doc.add_text(f.kind, kind.as_str());
        doc.add_u64(f.status, status.max(0) as u64);
        doc.add_u64(f.start, span.start_time_unix_nano);
        doc.add_u64(
            f.duration,
            span.end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano),
        );
        for t in self.res_tags.iter().chain(self.span_tags.iter()) {
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
