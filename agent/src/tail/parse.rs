//! Log line → OTLP log record.
//!
//! JSON object lines are taken apart (`level`/`severity` → severity,
//! `msg`/`message` → body, `time`/`ts` → timestamp, `trace_id`/`span_id` →
//! ids, everything else → attributes); other lines become the body as is,
//! with the severity read from common formats (`ERROR ...`, `[warn]`,
//! `level=info`, `2024-01-01 12:00:00 WARNING ...`). Pure functions.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

/// Severity number (OTel data model) for a level word, if it is one.
pub fn severity_number(word: &str) -> Option<i32> {
    let w = word.to_ascii_uppercase();
    Some(match w.as_str() {
        "TRACE" | "TRC" => 1,
        "DEBUG" | "DBG" | "FINE" => 5,
        "INFO" | "INF" | "INFORMATION" => 9,
        "NOTICE" => 10,
        "WARN" | "WARNING" | "WRN" => 13,
        "ERROR" | "ERR" | "SEVERE" => 17,
        "CRITICAL" | "CRIT" | "FATAL" | "PANIC" | "ALERT" | "EMERG" | "EMERGENCY" => 21,
        _ => return None,
    })
}

/// Parse one (possibly multi-line) record. `observed_ns` is when it was read.
pub fn parse_line(line: &str, observed_ns: u64) -> LogRecord {
    if line.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(line.trim()) {
            return from_json(map, line, observed_ns);
        }
    }
    let mut rec = LogRecord {
        observed_time_unix_nano: observed_ns,
        body: Some(string_value(line)),
        ..Default::default()
    };
    if let Some((text, n)) = plain_severity(line) {
        rec.severity_text = text;
        rec.severity_number = n;
    }
    rec
}

fn plain_severity(line: &str) -> Option<(String, i32)> {
    for token in line.split_whitespace().take(5) {
        let token = token
            .strip_prefix("level=")
            .or_else(|| token.strip_prefix("lvl="))
            .or_else(|| token.strip_prefix("severity="))
            .unwrap_or(token);
        let word = token.trim_matches(|c: char| !c.is_ascii_alphabetic());
        // "WARNING:root:msg" (Python logging's default format).
        let word = word.split(':').next().unwrap_or(word);
        if let Some(n) = severity_number(word) {
            return Some((word.to_ascii_uppercase(), n));
        }
    }
    None
}

fn from_json(
    mut map: serde_json::Map<String, serde_json::Value>,
    line: &str,
    observed_ns: u64,
) -> LogRecord {
    let mut rec = LogRecord {
        observed_time_unix_nano: observed_ns,
        ..Default::default()
    };
    let mut take = |keys: &[&str]| keys.iter().find_map(|k| map.remove(*k));
    if let Some(level) = take(&[
        "level",
        "severity",
        "lvl",
        "loglevel",
        "log.level",
        "severity_text",
    ]) {
        match level {
            serde_json::Value::String(s) => {
                rec.severity_number = severity_number(&s).unwrap_or(0);
                rec.severity_text = s;
            }
            serde_json::Value::Number(n) => {
                // Numeric levels: pino/bunyan (10..60) or an OTel number (1..24).
                let v = n.as_i64().unwrap_or(0);
                rec.severity_number = match v {
                    1..=24 => v as i32,
                    30 => 9,
                    40 => 13,
                    50 => 17,
                    60 => 21,
                    _ => 0,
                };
                rec.severity_text = v.to_string();
            }
            other => rec.severity_text = other.to_string(),
        }
    }
    rec.body = Some(match take(&["msg", "message", "body"]) {
        Some(serde_json::Value::String(s)) => string_value(&s),
        Some(other) => string_value(&other.to_string()),
        None => string_value(line.trim()),
    });
    if let Some(t) = take(&["time", "ts", "timestamp", "@timestamp"]) {
        match parse_time(&t) {
            Some(ns) => rec.time_unix_nano = ns,
            None => rec.attributes.push(kv("time", &t)),
        }
    }
    if let Some(v) = take(&["trace_id", "traceId", "trace.id", "traceid"]) {
        match hex_id(&v, 16) {
            Some(id) => rec.trace_id = id,
            None => rec.attributes.push(kv("trace_id", &v)),
        }
    }
    if let Some(v) = take(&["span_id", "spanId", "span.id", "spanid"]) {
        match hex_id(&v, 8) {
            Some(id) if !rec.trace_id.is_empty() => rec.span_id = id,
            _ => rec.attributes.push(kv("span_id", &v)),
        }
    }
    for (k, v) in map {
        rec.attributes.push(kv(&k, &v));
    }
    rec
}

fn hex_id(v: &serde_json::Value, len: usize) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    let bytes = hex::decode(s).ok()?;
    (bytes.len() == len && bytes.iter().any(|&b| b != 0)).then_some(bytes)
}

/// Nanoseconds per unit of an epoch number, by magnitude: seconds, ms, µs or ns.
fn epoch_scale(v: f64) -> u64 {
    if v < 1e11 {
        1_000_000_000
    } else if v < 1e14 {
        1_000_000
    } else if v < 1e17 {
        1_000
    } else {
        1
    }
}

/// Epoch numbers (seconds, ms, µs or ns by magnitude) or RFC 3339 text.
fn parse_time(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => {
            // Integers stay exact (an f64 cannot hold every ns timestamp).
            if let Some(i) = n.as_u64() {
                return (i > 0).then(|| i.saturating_mul(epoch_scale(i as f64)));
            }
            let f = n.as_f64()?;
            if !(f.is_finite() && f > 0.0) {
                return None;
            }
            // Fractional: whole units exactly, the fraction rounded to the ns.
            let scale = epoch_scale(f);
            let whole = f.trunc();
            let frac = ((f - whole) * scale as f64).round() as u64;
            Some((whole as u64).saturating_mul(scale).saturating_add(frac))
        }
        serde_json::Value::String(s) => {
            let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
            let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            u64::try_from(d.as_nanos()).ok()
        }
        _ => None,
    }
}

fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s.to_string())),
    }
}

fn kv(key: &str, v: &serde_json::Value) -> KeyValue {
    let value = match v {
        serde_json::Value::String(s) => Value::StringValue(s.clone()),
        serde_json::Value::Bool(b) => Value::BoolValue(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        other => Value::StringValue(other.to_string()),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &LogRecord) -> String {
        match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Value::StringValue(s)) => s.clone(),
            other => panic!("body {other:?}"),
        }
    }

    fn attr<'a>(r: &'a LogRecord, k: &str) -> Option<&'a Value> {
        r.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn plain_lines_keep_the_body_and_find_the_severity() {
        let cases = [
            ("2024-05-01 12:00:00 ERROR boom", "ERROR", 17),
            ("[warn] disk almost full", "WARN", 13),
            ("ts=1 level=info msg=hi", "INFO", 9),
            ("WARNING:root:careful", "WARNING", 13),
            ("I0501 12:00:00.000 no level word here", "", 0),
        ];
        for (line, text, n) in cases {
            let r = parse_line(line, 7);
            assert_eq!(body(&r), line);
            assert_eq!(
                (r.severity_text.as_str(), r.severity_number),
                (text, n),
                "{line}"
            );
            assert_eq!(r.observed_time_unix_nano, 7);
        }
    }

    #[test]
    fn json_lines_are_taken_apart() {
        let line = r#"{"level":"error","msg":"payment failed","ts":"2024-05-01T12:00:00.5Z","trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","order":42,"ok":false,"ctx":{"a":1}}"#;
        let r = parse_line(line, 1);
        assert_eq!(body(&r), "payment failed");
        assert_eq!((r.severity_text.as_str(), r.severity_number), ("error", 17));
        assert_eq!(r.time_unix_nano, 1_714_564_800_500_000_000);
        assert_eq!(hex::encode(&r.trace_id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(hex::encode(&r.span_id), "eee19b7ec3c1b174");
        assert_eq!(attr(&r, "order"), Some(&Value::IntValue(42)));
        assert_eq!(attr(&r, "ok"), Some(&Value::BoolValue(false)));
        assert_eq!(
            attr(&r, "ctx"),
            Some(&Value::StringValue(r#"{"a":1}"#.into()))
        );

        let r = parse_line(
            r#"{"severity":"WARNING","message":"x","time":1714564800,"trace_id":"zz"}"#,
            1,
        );
        assert_eq!(r.severity_number, 13);
        assert_eq!(r.time_unix_nano, 1_714_564_800_000_000_000);
        assert!(r.trace_id.is_empty(), "a bad id stays an attribute");
        assert_eq!(attr(&r, "trace_id"), Some(&Value::StringValue("zz".into())));
        let r = parse_line(r#"{"level":50,"ts":1714564800123}"#, 1);
        assert_eq!(r.severity_number, 17);
        assert_eq!(r.time_unix_nano, 1_714_564_800_123_000_000);
        // Not an object: plain.
        assert_eq!(body(&parse_line("{not json", 1)), "{not json");
    }
}
