//! Log documents: one per log record, built from a decoded
//! `ExportLogsServiceRequest` with reused buffers, and the stored one-record
//! `ResourceLogs` decoded back into a [`LogRow`]. Same hand-assembled stored
//! form as spans (see `spans.rs`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};
use prost::Message;
use tantivy::TantivyDocument;

use super::attrs::{any_value_text, hex_into, TagList, MAX_TAG_BYTES};
use super::schema::LogFields;
use super::spans::{assemble, original_items, put_bytes, put_message};
use crate::query::logql::labels::{effective_severity, record_labels};
use crate::query::{service_name, LogRow, ID_LABELS};

/// Reusable state for turning requests into log documents.
pub(crate) struct LogDocBuilder {
    f: LogFields,
    res_tags: TagList,
    rec_tags: TagList,
    res_part: Vec<u8>,
    scope_part: Vec<u8>,
    raw: Vec<u8>,
    body: String,
    hex: String,
    label: String,
}

impl LogDocBuilder {
    pub fn new(f: LogFields) -> Self {
        LogDocBuilder {
            f,
            res_tags: TagList::default(),
            rec_tags: TagList::default(),
            res_part: Vec::new(),
            scope_part: Vec::new(),
            raw: Vec::new(),
            body: String::new(),
            hex: String::new(),
            label: String::new(),
        }
    }

    /// Build one document per log record of `req` (decoded from `payload`),
    /// in order, and hand each to `emit`.
    pub fn build<E>(
        &mut self,
        req: &ExportLogsServiceRequest,
        payload: &[u8],
        mut emit: impl FnMut(TantivyDocument) -> Result<(), E>,
    ) -> Result<usize, E> {
        let expected = req
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        let originals = original_items(payload, expected);
        let mut count = 0;
        for rl in &req.resource_logs {
            let attrs = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let service = service_name(attrs);
            self.res_tags.clear();
            self.res_tags.extend_from(attrs);
            self.res_part.clear();
            if let Some(res) = &rl.resource {
                put_message(&mut self.res_part, 1, res);
            }
            put_bytes(&mut self.res_part, 3, rl.schema_url.as_bytes());
            for sl in &rl.scope_logs {
                self.scope_part.clear();
                if let Some(scope) = &sl.scope {
                    put_message(&mut self.scope_part, 1, scope);
                }
                put_bytes(&mut self.scope_part, 3, sl.schema_url.as_bytes());
                for rec in &sl.log_records {
                    let original = originals.as_ref().and_then(|o| o.get(count).copied());
                    let mut doc = self.log_doc(service, rec, original);
                    self.add_labels(&mut doc, attrs, sl.scope.as_ref(), rec);
                    emit(doc)?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    fn log_doc(
        &mut self,
        service: &str,
        rec: &LogRecord,
        original: Option<&[u8]>,
    ) -> TantivyDocument {
        let f = self.f;
        assemble(
            &mut self.raw,
            &self.res_part,
            &self.scope_part,
            original,
            rec,
        );

        self.body.clear();
        if let Some(body) = &rec.body {
            any_value_text(body, &mut self.body);
        }
        self.rec_tags.clear();
        self.rec_tags.extend_from(&rec.attributes);

        let estimate = 256
            + self.raw.len()
            + self.body.len()
            + self.res_tags.byte_len()
            + self.rec_tags.byte_len()
            + service.len();
        let mut doc = TantivyDocument::with_capacity(estimate);
        doc.add_u64(f.timestamp, log_timestamp(rec));
        doc.add_u64(f.observed, rec.observed_time_unix_nano);
        doc.add_u64(
            f.severity,
            effective_severity(rec.severity_number, &rec.severity_text).max(0) as u64,
        );
        doc.add_u64(f.body_bytes, self.body.len() as u64);
        if !rec.severity_text.is_empty() {
            doc.add_text(f.severity_text, &rec.severity_text);
        }
        doc.add_text(f.body, &self.body);
        doc.add_text(f.service, service);
        if !rec.trace_id.is_empty() {
            doc.add_text(f.trace_id, hex_into(&mut self.hex, &rec.trace_id));
        }
        if !rec.span_id.is_empty() {
            doc.add_text(f.span_id, hex_into(&mut self.hex, &rec.span_id));
        }
        for t in self.res_tags.iter().chain(self.rec_tags.iter()) {
            doc.add_text(f.tags, t);
        }
        doc.add_bytes(f.raw, &self.raw);
        doc
    }
}

impl LogDocBuilder {
    /// Index the record's Loki labels as `name=value` terms (the same labels
    /// the query side computes, so matchers can be answered from the index).
    fn add_labels(
        &mut self,
        doc: &mut TantivyDocument,
        resource_attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
        scope: Option<&opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
        rec: &LogRecord,
    ) {
        let labels = record_labels(resource_attrs, scope, rec);
        for (name, value, _) in labels.iter() {
            if ID_LABELS.contains(&name) || name == "severity_number" {
                continue;
            }
            self.label.clear();
            self.label.push_str(name);
            self.label.push('=');
            self.label.push_str(value);
            if self.label.len() <= MAX_TAG_BYTES {
                doc.add_text(self.f.labels, &self.label);
            }
        }
    }
}

/// The time a record is sorted and filtered by: its own time, or the
/// observed time when the producer did not set one.
pub(crate) fn log_timestamp(rec: &LogRecord) -> u64 {
    if rec.time_unix_nano != 0 {
        rec.time_unix_nano
    } else {
        rec.observed_time_unix_nano
    }
}

/// Decode a stored one-record `ResourceLogs`.
pub(crate) fn decode_log(raw: &[u8]) -> Result<LogRow, String> {
    let rl = ResourceLogs::decode(raw).map_err(|e| e.to_string())?;
    let sl = rl
        .scope_logs
        .into_iter()
        .next()
        .ok_or("stored log has no scope_logs")?;
    let record = sl
        .log_records
        .into_iter()
        .next()
        .ok_or("stored log has no record")?;
    Ok(LogRow {
        resource: rl.resource.unwrap_or_default(),
        scope: sl.scope,
        record,
    })
}
