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
//! - the trace is first assembled by [`crate::traces`]: duplicate span ids
//!   merged, clock skew corrected (span times and log timestamps shifted, a
//!   `clock skew adjusted by …` warning on each moved span), and each parent
//!   that never arrived shown as a placeholder span (operation `missing
//!   span`, service `unknown_service`, tag `skein.missing_span=true`, a
//!   warning) that its orphans reference as `CHILD_OF`, with a warning on
//!   each orphan too;
//! - spans sorted by (adjusted) start time, then span id.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::model::{KeyValue, Log, Process, Processes, RefType, Reference, Span, Trace, ValueType};
use crate::api::anyvalue;
use crate::query::{service_name, SpanKind, SpanRecord};
use crate::traces::{self, AssembledTrace, Node, TraceSettings};

/// Convert every span of one trace with the default settings (clock-skew
/// correction on). `None` when there is no span: an empty trace must never
/// reach a client (Grafana reads `spans[0]` unchecked).
pub fn trace(records: Vec<SpanRecord>) -> Option<Trace> {
    trace_with(records, &TraceSettings::default())
}

/// [`trace`] with explicit assembly settings.
pub fn trace_with(records: Vec<SpanRecord>, settings: &TraceSettings) -> Option<Trace> {
    traces::assemble(records, settings).map(|t| assembled(&t))
}

/// Convert an assembled trace (it always holds at least one received span).
pub fn assembled(trace: &AssembledTrace) -> Trace {
    let tree = &trace.tree;
    let trace_id = trace_id_hex(&tree.trace_id);
    let placeholder_resource = Resource {
        attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
            key: "skein.placeholder".into(),
            value: Some(AnyValue {
                value: Some(Value::BoolValue(true)),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut order: Vec<usize> = (0..tree.nodes.len()).collect();
    order.sort_by_key(|&i| (tree.nodes[i].start_unix_nano, tree.nodes[i].span_id));
    let mut processes = ProcessTable::default();
    let spans = order
        .into_iter()
        .map(|i| {
            let node = &tree.nodes[i];
            match &node.record {
                Some(record) => {
                    let process_id = processes.id_for(&record.resource);
                    span(node, record, process_id)
                }
                None => {
                    let process_id = processes.id_for(&placeholder_resource);
                    placeholder(&trace_id, node, process_id)
                }
            }
        })
        .collect();
    Trace {
        trace_id,
        spans,
        processes: processes.finish(),
        warnings: None,
    }
}

fn warnings(node: &Node) -> Option<Vec<String>> {
    (!node.warnings.is_empty()).then(|| node.warnings.clone())
}

fn placeholder(trace_id: &str, node: &Node, process_id: String) -> Span {
    Span {
        trace_id: trace_id.to_owned(),
        span_id: span_id_hex(&node.span_id),
        flags: 0,
        operation_name: node.name().to_owned(),
        references: Vec::new(),
        start_time: node.start_unix_nano / 1_000,
        duration: node.duration_ns() / 1_000,
        tags: vec![KeyValue::bool("skein.missing_span", true)],
        logs: Vec::new(),
        process_id,
        warnings: warnings(node),
    }
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

fn span(node: &Node, record: &SpanRecord, process_id: String) -> Span {
    let s = &record.span;
    let shift = |t: u64| {
        u64::try_from((i128::from(t) + i128::from(node.shift_ns)).max(0)).unwrap_or(u64::MAX)
    };
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
                timestamp: shift(e.time_unix_nano) / 1_000,
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
        start_time: node.start_unix_nano / 1_000,
        duration: node.duration_ns() / 1_000,
        tags: span_tags(record),
        logs,
        process_id,
        warnings: warnings(node),
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
