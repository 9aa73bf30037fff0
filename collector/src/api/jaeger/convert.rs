//! OTLP span records → Jaeger's trace JSON model.
//!
//! Owns the mapping rules (the same ones as the OpenTelemetry Collector's
//! Jaeger translator):
//! - ids: lowercase hex, trace ids left-padded to 32 characters, span ids to 16;
//! - times: Unix ns → integer µs; duration = end − start (never negative);
//! - references: the parent first as `CHILD_OF`, then each link as `FOLLOWS_FROM`;
//! - tags: span attributes, typed (`string|bool|int64|float64|binary`, arrays
//!   and maps as JSON text), then `span.kind`, `otel.status_code`,
//!   `otel.status_description`, `error`=true, `otel.scope.name`/`version`,
//!   `w3c.tracestate` when they apply;
//! - events → logs (`event` = name, then the attributes);
//! - processes: resource attributes except `service.name`, sorted by key,
//!   deduplicated by (service, tags) and numbered `p1`, `p2`, … in order of
//!   first appearance;
//! - spans sorted by start time; exact duplicates (same id and start) dropped.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::model::{KeyValue, Log, Process, Processes, RefType, Reference, Span, Trace, ValueType};
use crate::api::anyvalue;
use crate::query::{service_name, SpanKind, SpanRecord};

/// Convert every span of one trace. `None` when there is no span: an empty
/// trace must never reach a client (Grafana reads `spans[0]` unchecked).
pub fn trace(mut records: Vec<SpanRecord>) -> Option<Trace> {
    if records.is_empty() {
        return None;
    }
    records.sort_by(|a, b| {
        (a.span.start_time_unix_nano, &a.span.span_id)
            .cmp(&(b.span.start_time_unix_nano, &b.span.span_id))
    });
    records.dedup_by(|a, b| {
        a.span.span_id == b.span.span_id
            && a.span.start_time_unix_nano == b.span.start_time_unix_nano
    });

    let trace_id = trace_id_hex(&records[0].span.trace_id);
    let mut processes = ProcessTable::default();
    let spans = records
        .iter()
        .map(|r| {
            let process_id = processes.id_for(&r.resource);
            span(r, process_id)
        })
        .collect();
    Some(Trace {
        trace_id,
        spans,
        processes: processes.finish(),
        warnings: None,
    })
}

/// Earliest span start of a converted trace, in µs (for newest-first order).
pub fn trace_start_us(trace: &Trace) -> u64 {
    trace.spans.iter().map(|s| s.start_time).min().unwrap_or(0)
}

/// 16-byte ids as 32 lowercase hex characters (shorter input left-padded).
pub fn trace_id_hex(bytes: &[u8]) -> String {
    padded_hex(bytes, 32)
}

/// 8-byte ids as 16 lowercase hex characters (shorter input left-padded).
pub fn span_id_hex(bytes: &[u8]) -> String {
    padded_hex(bytes, 16)
}

fn padded_hex(bytes: &[u8], width: usize) -> String {
    let hex = hex::encode(bytes);
    if hex.len() >= width {
        hex
    } else {
        format!("{hex:0>width$}")
    }
}

fn is_set(id: &[u8]) -> bool {
    id.iter().any(|&b| b != 0)
}

fn span(record: &SpanRecord, process_id: String) -> Span {
    let s = &record.span;
    let trace_id = trace_id_hex(&s.trace_id);
    let mut references = Vec::with_capacity(1 + s.links.len());
    if is_set(&s.parent_span_id) {
        references.push(Reference {
            ref_type: RefType::ChildOf,
            trace_id: trace_id.clone(),
            span_id: span_id_hex(&s.parent_span_id),
        });
    }
    references.extend(s.links.iter().map(|l| Reference {
        ref_type: RefType::FollowsFrom,
        trace_id: trace_id_hex(&l.trace_id),
        span_id: span_id_hex(&l.span_id),
    }));

    let mut logs: Vec<Log> = s
        .events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(1 + e.attributes.len());
            if !e.name.is_empty() {
                fields.push(KeyValue::string("event", e.name.clone()));
            }
            fields.extend(
                e.attributes
                    .iter()
                    .map(|kv| tag(&kv.key, kv.value.as_ref())),
            );
            Log {
                timestamp: e.time_unix_nano / 1_000,
                fields,
            }
        })
        .collect();
    logs.sort_by_key(|l| l.timestamp);

    Span {
        trace_id,
        span_id: span_id_hex(&s.span_id),
        flags: s.flags & 0xff,
        operation_name: s.name.clone(),
        references,
        start_time: s.start_time_unix_nano / 1_000,
        duration: s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) / 1_000,
        tags: span_tags(record),
        logs,
        process_id,
        warnings: None,
    }
}

fn span_tags(record: &SpanRecord) -> Vec<KeyValue> {
    let s = &record.span;
    let mut tags: Vec<KeyValue> = s
        .attributes
        .iter()
        .map(|kv| tag(&kv.key, kv.value.as_ref()))
        .collect();
    let has = |tags: &[KeyValue], key: &str| tags.iter().any(|t| t.key == key);

    let kind = SpanKind::from_otlp(s.kind).as_str();
    if !kind.is_empty() && !has(&tags, "span.kind") {
        tags.push(KeyValue::string("span.kind", kind));
    }
    let status = s.status.as_ref();
    let code = status.map_or(StatusCode::Unset, |st| {
        StatusCode::try_from(st.code).unwrap_or(StatusCode::Unset)
    });
    match code {
        StatusCode::Ok => tags.push(KeyValue::string("otel.status_code", "OK")),
        StatusCode::Error => tags.push(KeyValue::string("otel.status_code", "ERROR")),
        StatusCode::Unset => {}
    }
    if let Some(msg) = status
        .map(|st| st.message.as_str())
        .filter(|m| !m.is_empty())
    {
        tags.push(KeyValue::string("otel.status_description", msg));
    }
    if code == StatusCode::Error {
        // The status decides: an `error` attribute with another value is replaced.
        tags.retain(|t| t.key != "error");
        tags.push(KeyValue::bool("error", true));
    }
    if let Some(scope) = &record.scope {
        push_scope_tags(&mut tags, scope);
    }
    if !s.trace_state.is_empty() && !has(&tags, "w3c.tracestate") {
        tags.push(KeyValue::string("w3c.tracestate", s.trace_state.clone()));
    }
    tags
}

fn push_scope_tags(tags: &mut Vec<KeyValue>, scope: &InstrumentationScope) {
    if !scope.name.is_empty() {
        tags.push(KeyValue::string("otel.scope.name", scope.name.clone()));
    }
    if !scope.version.is_empty() {
        tags.push(KeyValue::string(
            "otel.scope.version",
            scope.version.clone(),
        ));
    }
}

/// One attribute as a typed Jaeger tag.
pub fn tag(key: &str, value: Option<&AnyValue>) -> KeyValue {
    let (value_type, value) = match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => (ValueType::String, serde_json::Value::String(s.clone())),
        Some(Value::BoolValue(b)) => (ValueType::Bool, serde_json::Value::Bool(*b)),
        Some(Value::IntValue(i)) => (ValueType::Int64, serde_json::Value::from(*i)),
        Some(Value::DoubleValue(d)) => match anyvalue::double_to_json(*d) {
            n @ serde_json::Value::Number(_) => (ValueType::Float64, n),
            text => (ValueType::String, text),
        },
        Some(Value::BytesValue(b)) => (
            ValueType::Binary,
            serde_json::Value::String(anyvalue::base64(b)),
        ),
        Some(Value::ArrayValue(_) | Value::KvlistValue(_) | Value::StringValueStrindex(_)) => (
            ValueType::String,
            serde_json::Value::String(anyvalue::to_text(value)),
        ),
        None => (ValueType::String, serde_json::Value::String(String::new())),
    };
    KeyValue {
        key: key.to_owned(),
        value_type,
        value,
    }
}

/// Assigns `p1`, `p2`, … to distinct (service, tags) pairs.
#[derive(Default)]
struct ProcessTable<'a> {
    /// Resources already seen, by exact equality (cheap fast path: most
    /// spans of a trace share a handful of resources).
    seen: Vec<(&'a Resource, String)>,
    processes: Vec<(String, Process)>,
}

impl<'a> ProcessTable<'a> {
    fn id_for(&mut self, resource: &'a Resource) -> String {
        if let Some((_, id)) = self.seen.iter().find(|(r, _)| *r == resource) {
            return id.clone();
        }
        let process = process(resource);
        let id = match self.processes.iter().find(|(_, p)| *p == process) {
            Some((id, _)) => id.clone(),
            None => {
                let id = format!("p{}", self.processes.len() + 1);
                self.processes.push((id.clone(), process));
                id
            }
        };
        self.seen.push((resource, id.clone()));
        id
    }

    fn finish(self) -> Processes {
        Processes(self.processes)
    }
}

fn process(resource: &Resource) -> Process {
    let mut tags: Vec<KeyValue> = resource
        .attributes
        .iter()
        .filter(|kv| kv.key != "service.name")
        .map(|kv| tag(&kv.key, kv.value.as_ref()))
        .collect();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    Process {
        service_name: service_name(&resource.attributes).to_owned(),
        tags,
    }
}
