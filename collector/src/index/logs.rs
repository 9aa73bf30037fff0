//! Log documents: one per log record, built from a decoded
//! `ExportLogsServiceRequest` with reused buffers, and the stored one-record
//! `ResourceLogs` decoded back into a [`LogRow`]. Same hand-assembled stored
//! form as spans (see `spans.rs`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};
use prost::Message;
use tantivy::TantivyDocument;

use super::attrs::{any_value_text, hex_into, MAX_TAG_BYTES};
use super::schema::LogFields;
use super::spans::{assemble, original_items, put_bytes, put_message};
use crate::query::logql::labels::{effective_severity, level_name, sanitize_into};
use crate::query::{service_name, LogRow};

/// Reusable state for turning requests into log documents.
pub(crate) struct LogDocBuilder {
    f: LogFields,
    res_part: Vec<u8>,
    scope_part: Vec<u8>,
    raw: Vec<u8>,
    body: String,
    hex: String,
    labels: LabelTerms,
}

impl LogDocBuilder {
    pub fn new(f: LogFields) -> Self {
        LogDocBuilder {
            f,
            res_part: Vec::new(),
            scope_part: Vec::new(),
            raw: Vec::new(),
            body: String::new(),
            hex: String::new(),
            labels: LabelTerms::default(),
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
            self.labels.start_resource(attrs);
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
                    self.labels.set_record(sl.scope.as_ref(), rec);
                    emit(self.log_doc(service, rec, original))?;
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

        let estimate =
            256 + self.raw.len() + self.body.len() + self.labels.byte_len() + service.len();
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
        // The record's Loki labels as `name=value` terms, so matchers can be
        // answered from the index (see `LabelTerms`).
        for term in self.labels.terms() {
            if term.len() <= MAX_TAG_BYTES {
                doc.add_text(f.labels, term);
            }
        }
        doc.add_bytes(f.raw, &self.raw);
        doc
    }
}

/// The `name=value` label terms of the record being indexed: the labels
/// `query::logql::labels::record_labels` gives (first value of a name wins,
/// empty values are no label) except `trace_id`, `span_id` and
/// `severity_number`. Built into reused strings, the resource's part once
/// per resource (kept across its records), then the record's.
#[derive(Default)]
pub(crate) struct LabelTerms {
    /// Terms in use (a prefix of `buf`); `buf` keeps the strings' capacity.
    len: usize,
    resource_len: usize,
    buf: Vec<String>,
    /// Name length of each term in use.
    name_len: Vec<usize>,
}

/// Labels never indexed: ids are looked up through their own fields, the
/// severity number through its fast field. Since no term of these names is
/// indexed, whether an earlier label took the name does not matter.
const UNINDEXED_LABELS: [&str; 3] = ["trace_id", "span_id", "severity_number"];

impl LabelTerms {
    /// Start a resource: `service_name` and its scalar attributes.
    pub fn start_resource(&mut self, attrs: &[KeyValue]) {
        self.len = 0;
        self.name_len.clear();
        self.push_str("service_name", service_name(attrs));
        for kv in attrs {
            if kv.key != "service.name" {
                self.push_attr(&kv.key, kv.value.as_ref());
            }
        }
        self.resource_len = self.len;
    }

    /// The labels of `rec` (under the current resource and `scope`),
    /// replacing the previous record's.
    pub fn set_record(&mut self, scope: Option<&InstrumentationScope>, rec: &LogRecord) {
        self.len = self.resource_len;
        self.name_len.truncate(self.resource_len);
        let level = level_name(effective_severity(rec.severity_number, &rec.severity_text));
        self.push_str("level", level);
        self.push_str("detected_level", level);
        self.push_str("severity_text", &rec.severity_text);
        if let Some(scope) = scope {
            self.push_str("scope_name", &scope.name);
        }
        for kv in &rec.attributes {
            self.push_attr(&kv.key, kv.value.as_ref());
        }
    }

    /// Total bytes of the terms in use.
    pub fn byte_len(&self) -> usize {
        self.terms().map(str::len).sum()
    }

    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.buf[..self.len].iter().map(String::as_str)
    }

    fn taken(&self, name: &str) -> bool {
        self.buf[..self.len]
            .iter()
            .zip(&self.name_len)
            .any(|(t, &n)| &t[..n] == name)
    }

    /// Add `name=value` unless the value is empty or the name taken.
    fn push_str(&mut self, name: &str, value: &str) {
        if value.is_empty() || UNINDEXED_LABELS.contains(&name) || self.taken(name) {
            return;
        }
        let term = self.next_term();
        term.push_str(name);
        term.push('=');
        term.push_str(value);
        self.commit(name.len());
    }

    /// Add an attribute under its sanitized name when its value is scalar.
    fn push_attr(&mut self, key: &str, value: Option<&AnyValue>) {
        use std::fmt::Write;
        let Some(v) = value.and_then(|v| v.value.as_ref()) else {
            return;
        };
        if let Value::StringValue(s) = v {
            if s.is_empty() {
                return;
            }
        }
        if !matches!(
            v,
            Value::StringValue(_)
                | Value::BoolValue(_)
                | Value::IntValue(_)
                | Value::DoubleValue(_)
        ) {
            return;
        }
        let term = self.next_term();
        sanitize_into(key, term);
        let name_len = term.len();
        let (built, rest) = self.buf.split_at_mut(self.len);
        let term = &mut rest[0];
        let name = &term[..name_len];
        // A name that is never indexed takes nothing from the others: skip it.
        let taken = UNINDEXED_LABELS.contains(&name)
            || built
                .iter()
                .zip(&self.name_len)
                .any(|(t, &n)| &t[..n] == name);
        if taken {
            return;
        }
        term.push('=');
        let _ = match v {
            Value::StringValue(s) => {
                term.push_str(s);
                Ok(())
            }
            Value::BoolValue(b) => write!(term, "{b}"),
            Value::IntValue(i) => write!(term, "{i}"),
            Value::DoubleValue(d) => write!(term, "{d}"),
            _ => Ok(()),
        };
        self.commit(name_len);
    }

    /// The next free string, cleared (not yet counted as in use).
    fn next_term(&mut self) -> &mut String {
        if self.buf.len() == self.len {
            self.buf.push(String::new());
        }
        let term = &mut self.buf[self.len];
        term.clear();
        term
    }

    fn commit(&mut self, name_len: usize) {
        self.name_len.push(name_len);
        self.len += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::logql::labels::record_labels;
    use crate::query::ID_LABELS;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    /// What the query side says the record's indexed labels are.
    fn expected(
        res: &[KeyValue],
        scope: Option<&InstrumentationScope>,
        rec: &LogRecord,
    ) -> Vec<String> {
        let mut out: Vec<String> = record_labels(res, scope, rec)
            .iter()
            .filter(|(n, _, _)| !ID_LABELS.contains(n) && *n != "severity_number")
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn label_terms_are_the_query_sides_labels() {
        let resources = [
            vec![
                kv("service.name", s("checkout")),
                kv("k8s.pod.name", s("p-1")),
                kv("level", s("shadow")),
            ],
            vec![
                kv("host.name", s("")),
                kv("9lives", Value::IntValue(9)),
                kv("a.b", s("1")),
                kv("a_b", s("2")),
            ],
            vec![],
        ];
        let scopes = [
            None,
            Some(InstrumentationScope {
                name: "lib".into(),
                ..Default::default()
            }),
            Some(InstrumentationScope::default()),
        ];
        let records = [
            LogRecord {
                severity_number: 17,
                severity_text: "ERROR".into(),
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                attributes: vec![
                    kv("http.method", s("GET")),
                    kv("trace_id", s("attr")),
                    kv("ok", Value::BoolValue(true)),
                    kv("ratio", Value::DoubleValue(0.25)),
                    kv("list", Value::ArrayValue(ArrayValue::default())),
                    kv("k8s.pod.name", s("record-loses")),
                    kv("http_method", s("second-loses")),
                ],
                ..Default::default()
            },
            LogRecord {
                severity_text: "warning".into(),
                attributes: vec![
                    kv("span_id", s("x")),
                    kv("severity_number", Value::IntValue(3)),
                    kv("empty", s("")),
                ],
                ..Default::default()
            },
            LogRecord::default(),
        ];
        let mut terms = LabelTerms::default();
        for res in &resources {
            terms.start_resource(res);
            for scope in &scopes {
                for rec in &records {
                    terms.set_record(scope.as_ref(), rec);
                    let mut got: Vec<String> = terms.terms().map(str::to_string).collect();
                    got.sort();
                    assert_eq!(
                        got,
                        expected(res, scope.as_ref(), rec),
                        "resource {res:?}, scope {scope:?}, record {rec:?}"
                    );
                }
            }
        }
    }
}
