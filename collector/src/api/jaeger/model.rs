//! Jaeger's JSON model (`model/json` in Jaeger, what its UI and Grafana's
//! Jaeger data source parse): the response envelope, traces, spans,
//! processes, typed tags and logs. Field names and units follow Jaeger
//! exactly: ids are lowercase hex, times and durations are integer µs.
//!
//! Owns only the shapes; [`super::convert`] fills them from OTLP records.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Jaeger's `structuredResponse` for successful answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope<T: Serialize> {
    pub data: T,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub errors: Option<()>,
}

impl<T: Serialize> Envelope<T> {
    /// `{"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}`.
    pub fn new(data: T, total: usize) -> Self {
        Envelope {
            data,
            total,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }
}

/// One trace: its spans, and the processes they reference by id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    pub processes: Processes,
    pub warnings: Option<Vec<String>>,
}

/// `{"p1": {...}, "p2": {...}}` in id order (a map in JSON, a list here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processes(pub Vec<(String, Process)>);

impl Processes {
    pub fn get(&self, id: &str) -> Option<&Process> {
        self.0.iter().find(|(pid, _)| pid == id).map(|(_, p)| p)
    }
}

impl Serialize for Processes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, process) in &self.0 {
            map.serialize_entry(id, process)?;
        }
        map.end()
    }
}

/// A service instance: `service.name` plus the other resource attributes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub flags: u32,
    #[serde(rename = "operationName")]
    pub operation_name: String,
    pub references: Vec<Reference>,
    /// Unix µs.
    #[serde(rename = "startTime")]
    pub start_time: u64,
    /// µs.
    pub duration: u64,
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RefType {
    #[serde(rename = "CHILD_OF")]
    ChildOf,
    #[serde(rename = "FOLLOWS_FROM")]
    FollowsFrom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: RefType,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// Jaeger tag value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    String,
    Bool,
    Int64,
    Float64,
    Binary,
}

/// A typed tag: `{"key", "type", "value"}` with `value` a JSON string, bool
/// or number matching `type` (binary: base64 string).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    pub value: serde_json::Value,
}

impl KeyValue {
    pub fn string(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.into(),
            value_type: ValueType::String,
            value: serde_json::Value::String(value.into()),
        }
    }

    pub fn bool(key: impl Into<String>, value: bool) -> Self {
        KeyValue {
            key: key.into(),
            value_type: ValueType::Bool,
            value: serde_json::Value::Bool(value),
        }
    }
}

/// A span event: timestamp (Unix µs) and fields (`event` = name first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Log {
    pub timestamp: u64,
    pub fields: Vec<KeyValue>,
}

/// `/api/operations` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationItem {
    pub name: String,
    #[serde(rename = "spanKind")]
    pub span_kind: String,
}
