//! Rules → JSON in the same shape the parser reads, so what
//! `GET /api/v1/rules` returns can be `PUT` back unchanged, and the persisted
//! file is read by the same parser as `--rules` files.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Origin, Rule, RuleGroup, RuleKind, RuleSet};

fn dur(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// One rule as the parser reads it.
pub fn rule_to_json(r: &Rule) -> Value {
    let mut m = Map::new();
    m.insert("alert".into(), json!(r.alert));
    m.insert("kind".into(), json!(r.kind.name()));
    if let Some(s) = &r.service {
        m.insert("service".into(), json!(s));
    }
    match &r.kind {
        RuleKind::InstanceDown => {}
        RuleKind::TooFewInstances { min } => {
            m.insert("min".into(), json!(min));
        }
        RuleKind::ErrorRate {
            threshold,
            window,
            operation,
        } => {
            m.insert("threshold".into(), json!(threshold));
            m.insert("window".into(), json!(dur(*window)));
            if let Some(o) = operation {
                m.insert("operation".into(), json!(o));
            }
        }
        RuleKind::Latency {
            quantile,
            threshold,
            window,
            operation,
        } => {
            m.insert("quantile".into(), json!(quantile));
            m.insert("threshold".into(), json!(dur(*threshold)));
            m.insert("window".into(), json!(dur(*window)));
            if let Some(o) = operation {
                m.insert("operation".into(), json!(o));
            }
        }
        RuleKind::LogMatch {
            query,
            threshold,
            window,
            min_severity,
        } => {
            m.insert("query".into(), json!(query));
            m.insert("threshold".into(), json!(threshold));
            m.insert("window".into(), json!(dur(*window)));
            if let Some(s) = min_severity {
                m.insert("min_severity".into(), json!(s));
            }
        }
    }
    m.insert("for".into(), json!(dur(r.for_)));
    m.insert("keep_firing_for".into(), json!(dur(r.keep_firing_for)));
    m.insert("labels".into(), json!(r.labels));
    m.insert("annotations".into(), json!(r.annotation_text));
    Value::Object(m)
}

/// One group as the parser reads it.
pub fn group_to_json(g: &RuleGroup) -> Value {
    json!({
        "name": g.name,
        "interval": dur(g.interval),
        "rules": g.rules.iter().map(rule_to_json).collect::<Vec<_>>(),
    })
}

/// Every group, each with `"source": "file:…" | "api"` and `"editable"`
/// (read-only: the parser ignores both, so the answer can be `PUT` back).
pub fn set_to_json(set: &RuleSet) -> Value {
    let groups: Vec<Value> = set
        .groups
        .iter()
        .map(|(origin, g)| {
            let mut v = group_to_json(g);
            if let Value::Object(m) = &mut v {
                m.insert("source".into(), json!(origin.describe()));
                m.insert("editable".into(), json!(*origin == Origin::Api));
            }
            v
        })
        .collect();
    json!({ "groups": groups })
}
