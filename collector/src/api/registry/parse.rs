//! The heartbeat body: `{"service","instance","ttl","heartbeat_revision",
//! "address","metadata","health"}` → [`Heartbeat`], with an error naming
//! the offending field. Unknown fields are ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::registry::{Health, Heartbeat, Source};

pub const MIN_TTL: Duration = Duration::from_secs(1);
pub const MAX_TTL: Duration = Duration::from_secs(3600);
const MAX_NAME: usize = 253;
const MAX_TEXT: usize = 1024;
const MAX_METADATA: usize = 64;
const MAX_METADATA_KEY: usize = 128;

/// A 400 message.
pub type Invalid = String;

fn missing(field: &str) -> Invalid {
    format!("missing field '{field}'")
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Invalid {
    format!("invalid field '{field}': {why}")
}

pub fn heartbeat(body: &[u8]) -> Result<Heartbeat, Invalid> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("invalid JSON body: expected an object".into());
    };
    let service = name(&obj, "service")?;
    if service.contains('/') {
        return Err(invalid("service", "must not contain '/'"));
    }
    let instance = name(&obj, "instance")?;
    let ttl = ttl(obj.get("ttl").ok_or_else(|| missing("ttl"))?)?;
    let heartbeat_revision = match obj.get("heartbeat_revision") {
        None | Some(Value::Null) => return Err(missing("heartbeat_revision")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| invalid("heartbeat_revision", "must be a non-negative integer"))?,
    };
    let address = match obj.get("address") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.len() <= MAX_TEXT => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid("address", format!("longer than {MAX_TEXT} bytes")))
        }
        Some(_) => return Err(invalid("address", "must be a string")),
    };
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => metadata(m)?,
        Some(_) => return Err(invalid("metadata", "must be an object of strings")),
    };
    let health = match obj.get("health") {
        None | Some(Value::Null) => Health::Passing,
        Some(Value::String(s)) => Health::parse(s).ok_or_else(|| {
            invalid(
                "health",
                format!("\"{s}\" is not one of passing, warning, critical"),
            )
        })?,
        Some(_) => return Err(invalid("health", "must be a string")),
    };
    Ok(Heartbeat {
        service,
        instance,
        ttl_ms: ttl.as_millis() as u32,
        heartbeat_revision,
        address,
        metadata,
        health,
        source: Source::Http,
    })
}

fn name(obj: &Map<String, Value>, field: &str) -> Result<String, Invalid> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(invalid(field, "must not be empty")),
        Some(Value::String(s)) if s.len() > MAX_NAME => {
            Err(invalid(field, format!("longer than {MAX_NAME} bytes")))
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(invalid(field, "must not contain control characters"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

/// `"30s"`, `"1m30s"`, `"1500ms"` or a number of seconds.
fn ttl(v: &Value) -> Result<Duration, Invalid> {
    let d = match v {
        Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| invalid("ttl", format!("\"{s}\" is not a duration (e.g. 30s): {e}")))?,
        Value::Number(n) => {
            let secs = n
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| invalid("ttl", "must be a duration like \"30s\" or seconds"))?;
            Duration::from_secs_f64(secs.min(1e9))
        }
        _ => return Err(invalid("ttl", "must be a duration like \"30s\" or seconds")),
    };
    if d < MIN_TTL || d > MAX_TTL {
        return Err(invalid("ttl", format!("{d:?} is outside 1s..1h")));
    }
    Ok(d)
}

fn metadata(m: &Map<String, Value>) -> Result<BTreeMap<String, String>, Invalid> {
    if m.len() > MAX_METADATA {
        return Err(invalid(
            "metadata",
            format!("more than {MAX_METADATA} entries"),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let field = format!("metadata.{k}");
        if k.is_empty() || k.len() > MAX_METADATA_KEY {
            return Err(invalid(
                &field,
                format!("keys must be 1..{MAX_METADATA_KEY} bytes"),
            ));
        }
        match v {
            Value::String(s) if s.len() <= MAX_TEXT => {
                out.insert(k.clone(), s.clone());
            }
            Value::String(_) => {
                return Err(invalid(&field, format!("longer than {MAX_TEXT} bytes")))
            }
            _ => return Err(invalid(&field, "must be a string")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        heartbeat(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_full_heartbeat() {
        let hb = heartbeat(
            br#"{"service":"cart","instance":"cart-1","ttl":"30s","heartbeat_revision":7,
                 "address":"10.0.0.1:80","metadata":{"zone":"a"},"health":"warning","extra":1}"#,
        )
        .unwrap();
        assert_eq!(hb.ttl_ms, 30_000);
        assert_eq!(hb.heartbeat_revision, 7);
        assert_eq!(hb.health, Health::Warning);
        assert_eq!(hb.metadata.get("zone").map(String::as_str), Some("a"));
        assert_eq!(
            heartbeat(br#"{"service":"a","instance":"b","ttl":2,"heartbeat_revision":1}"#)
                .unwrap()
                .ttl_ms,
            2000
        );
    }

    #[test]
    fn errors_name_the_field() {
        let ok = r#""service":"a","instance":"b","heartbeat_revision":1"#;
        assert!(err("{").contains("invalid JSON"));
        assert!(err("[]").contains("object"));
        assert_eq!(
            err(r#"{"instance":"b","ttl":"5s","heartbeat_revision":1}"#),
            "missing field 'service'"
        );
        assert_eq!(
            err(r#"{"service":"a","ttl":"5s","heartbeat_revision":1}"#),
            "missing field 'instance'"
        );
        assert_eq!(err(&format!("{{{ok}}}")), "missing field 'ttl'");
        assert!(err(&format!(r#"{{{ok},"ttl":"500ms"}}"#)).starts_with("invalid field 'ttl'"));
        assert!(err(&format!(r#"{{{ok},"ttl":"2h"}}"#)).starts_with("invalid field 'ttl'"));
        assert!(err(&format!(r#"{{{ok},"ttl":"soon"}}"#)).starts_with("invalid field 'ttl'"));
        assert_eq!(
            err(r#"{"service":"a","instance":"b","ttl":"5s"}"#),
            "missing field 'heartbeat_revision'"
        );
        assert!(
            err(r#"{"service":"a","instance":"b","ttl":"5s","heartbeat_revision":-1}"#)
                .starts_with("invalid field 'heartbeat_revision'")
        );
        assert!(err(&format!(r#"{{{ok},"ttl":"5s","health":"meh"}}"#))
            .starts_with("invalid field 'health'"));
        assert!(err(&format!(r#"{{{ok},"ttl":"5s","metadata":{{"n":1}}}}"#))
            .starts_with("invalid field 'metadata.n'"));
        assert!(
            err(r#"{"service":"a/b","instance":"b","ttl":"5s","heartbeat_revision":1}"#)
                .starts_with("invalid field 'service'")
        );
    }
}
