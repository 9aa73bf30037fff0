//! The Loki label model of a stored log record, shared by the query side
//! (stream labels in answers, matchers) and the index (which indexes the same
//! `name=value` pairs so matchers can be answered from it).
//!
//! - **stream labels**: `service_name`, every scalar resource attribute with
//!   its name sanitized (`k8s.pod.name` → `k8s_pod_name`), and `level`
//!   (`trace|debug|info|warn|error|fatal|unknown`, from the severity number, or
//!   from the severity text when the number is 0);
//! - **structured metadata**: `detected_level` (same as `level`),
//!   `severity_text`, `severity_number`, `trace_id`, `span_id` (lowercase
//!   hex), `scope_name`, and every scalar record attribute (sanitized);
//! - **parsed** labels are added by `| json`, `| logfmt`, `| regexp`.
//!
//! A name already taken keeps its first value. Empty values are no label.

use std::collections::BTreeMap;
use std::fmt::Write;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::query::{service_name, LogRow};

/// Which part of a Loki answer a label belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LabelKind {
    Stream,
    Metadata,
    Parsed,
}

/// Labels of one entry, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSet(BTreeMap<String, (String, LabelKind)>);

impl LabelSet {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|(v, _)| v.as_str())
    }

    /// Insert unless the name is taken or the value empty.
    pub fn insert(&mut self, name: String, value: String, kind: LabelKind) {
        if value.is_empty() {
            return;
        }
        self.0.entry(name).or_insert((value, kind));
    }

    /// Insert a parsed label: a taken name gets the suffix `_extracted`, as Loki does.
    pub fn insert_parsed(&mut self, name: String, value: String) {
        if self.0.contains_key(&name) {
            let name = format!("{name}_extracted");
            self.0.insert(name, (value, LabelKind::Parsed));
        } else {
            self.0.insert(name, (value, LabelKind::Parsed));
        }
    }

    /// Set a label, replacing any value (used for `__error__`).
    pub fn set(&mut self, name: &str, value: &str, kind: LabelKind) {
        self.0.insert(name.to_string(), (value.to_string(), kind));
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|k, _| keep(k));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, LabelKind)> {
        self.0
            .iter()
            .map(|(k, (v, kind))| (k.as_str(), v.as_str(), *kind))
    }

    /// `name → value` pairs of one kind, sorted by name.
    pub fn of_kind(&self, kind: LabelKind) -> Vec<(String, String)> {
        self.iter()
            .filter(|(_, _, k)| *k == kind)
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Every `name → value` pair, sorted by name.
    pub fn all(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect()
    }
}

/// Prometheus-style label name: anything outside `[a-zA-Z0-9_]` becomes `_`,
/// and a leading digit gets a `_` prefix.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    sanitize_into(name, &mut out);
    out
}

/// [`sanitize`], appended to `out`.
pub fn sanitize_into(name: &str, out: &mut String) {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// The severity number a record is filed under: its own, or one read from
/// its severity text when the number is unset.
pub fn effective_severity(number: i32, text: &str) -> i32 {
    if number > 0 {
        return number;
    }
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" | "dbug" => 5,
        "info" | "information" | "notice" => 9,
        "warn" | "warning" => 13,
        "error" | "err" => 17,
        "fatal" | "critical" | "crit" | "panic" | "alert" | "emergency" => 21,
        _ => 0,
    }
}

/// Loki's level name for an (effective) severity number.
pub fn level_name(severity: i32) -> &'static str {
    match severity {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => "unknown",
    }
}

/// Every level name, in the order of their severity numbers.
pub const LEVELS: [&str; 7] = [
    "unknown", "trace", "debug", "info", "warn", "error", "fatal",
];

/// Scalar attribute value as label text (arrays, maps and bytes: `None`).
pub fn scalar_text(value: Option<&AnyValue>) -> Option<String> {
    match value.and_then(|v| v.value.as_ref())? {
        Value::StringValue(s) => Some(s.clone()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The labels of a record under a resource and scope (see the module docs).
pub fn record_labels(
    resource_attrs: &[KeyValue],
    scope: Option<&InstrumentationScope>,
    rec: &LogRecord,
) -> LabelSet {
    let mut set = LabelSet::default();
    set.insert(
        "service_name".into(),
        service_name(resource_attrs).to_string(),
        LabelKind::Stream,
    );
    for kv in resource_attrs {
        if kv.key == "service.name" {
            continue;
        }
        if let Some(v) = scalar_text(kv.value.as_ref()) {
            set.insert(sanitize(&kv.key), v, LabelKind::Stream);
        }
    }
    let level = level_name(effective_severity(rec.severity_number, &rec.severity_text));
    set.insert("level".into(), level.into(), LabelKind::Stream);
    let md = LabelKind::Metadata;
    set.insert("detected_level".into(), level.into(), md);
    set.insert("severity_text".into(), rec.severity_text.clone(), md);
    if rec.severity_number > 0 {
        set.insert(
            "severity_number".into(),
            rec.severity_number.to_string(),
            md,
        );
    }
    set.insert("trace_id".into(), hex(&rec.trace_id), md);
    set.insert("span_id".into(), hex(&rec.span_id), md);
    if let Some(scope) = scope {
        set.insert("scope_name".into(), scope.name.clone(), md);
    }
    for kv in &rec.attributes {
        if let Some(v) = scalar_text(kv.value.as_ref()) {
            set.insert(sanitize(&kv.key), v, md);
        }
    }
    set
}

/// [`record_labels`] of a stored row.
pub fn row_labels(row: &LogRow) -> LabelSet {
    record_labels(&row.resource.attributes, row.scope.as_ref(), &row.record)
}

/// The time a record is filed under: its own time, else the observed time.
pub fn row_time(row: &LogRow) -> u64 {
    if row.record.time_unix_nano != 0 {
        row.record.time_unix_nano
    } else {
        row.record.observed_time_unix_nano
    }
}

/// The log line of a record: a string body as is, other bodies as JSON
/// (so `| json` works on map bodies).
pub fn row_line(row: &LogRow) -> String {
    match row.record.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(other) => to_json(other).to_string(),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    let inner = |a: &AnyValue| a.value.as_ref().map_or(J::Null, to_json);
    match v {
        Value::StringValue(s) => J::String(s.clone()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::BytesValue(b) => J::String(hex(b)),
        Value::StringValueStrindex(_) => J::Null,
        Value::ArrayValue(a) => J::Array(a.values.iter().map(inner).collect()),
        Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, inner)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;

    fn kv(k: &str, v: V) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn labels_split_into_stream_and_metadata() {
        let res = vec![
            kv("service.name", V::StringValue("api".into())),
            kv("k8s.pod.name", V::StringValue("p-1".into())),
        ];
        let rec = LogRecord {
            severity_text: "Warning".into(),
            trace_id: vec![0xab; 16],
            attributes: vec![kv("http.status", V::IntValue(500))],
            ..Default::default()
        };
        let l = record_labels(&res, None, &rec);
        assert_eq!(l.get("service_name"), Some("api"));
        assert_eq!(l.get("k8s_pod_name"), Some("p-1"));
        assert_eq!(l.get("level"), Some("warn"));
        assert_eq!(l.get("detected_level"), Some("warn"));
        assert_eq!(l.get("http_status"), Some("500"));
        assert_eq!(l.get("trace_id"), Some("abababababababababababababababab"));
        assert_eq!(l.get("span_id"), None);
        assert_eq!(
            l.of_kind(LabelKind::Stream),
            vec![
                ("k8s_pod_name".to_string(), "p-1".to_string()),
                ("level".into(), "warn".into()),
                ("service_name".into(), "api".into())
            ]
        );
    }

    #[test]
    fn sanitize_and_levels() {
        assert_eq!(sanitize("a.b-c"), "a_b_c");
        assert_eq!(sanitize("1x"), "_1x");
        assert_eq!(level_name(effective_severity(0, "ERROR")), "error");
        assert_eq!(level_name(effective_severity(9, "whatever")), "info");
        assert_eq!(level_name(0), "unknown");
    }
}
