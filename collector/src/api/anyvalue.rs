//! OTLP `AnyValue` → JSON, shared by the Jaeger and native views.
//!
//! Owns one rendering of attribute values: strings, bools and numbers stay
//! typed, bytes become base64, arrays and key/value lists become JSON arrays
//! and objects, non-finite doubles become the strings `NaN`, `+Inf`, `-Inf`
//! (JSON has no such numbers), and a missing value is `null`.

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::{Map, Value as Json};

/// Render an attribute value as JSON.
pub fn to_json(value: Option<&AnyValue>) -> Json {
    match value.and_then(|v| v.value.as_ref()) {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s.clone()),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => double_to_json(*d),
        Some(Value::BytesValue(bytes)) => Json::String(base64(bytes)),
        Some(Value::ArrayValue(array)) => {
            Json::Array(array.values.iter().map(|v| to_json(Some(v))).collect())
        }
        Some(Value::KvlistValue(list)) => Json::Object(attributes_to_json(&list.values)),
        // A string-table index only means something inside a profile.
        Some(Value::StringValueStrindex(i)) => Json::from(*i),
    }
}

/// Key/value pairs as a JSON object (a repeated key: the last one wins).
pub fn attributes_to_json(attributes: &[KeyValue]) -> Map<String, Json> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), to_json(kv.value.as_ref())))
        .collect()
}

/// Render a value as display text: strings as they are, anything else as
/// its JSON text, a missing value as `""`.
pub fn to_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(_) => to_json(value).to_string(),
    }
}

/// A finite double as a JSON number, otherwise `NaN`/`+Inf`/`-Inf` strings.
pub fn double_to_json(d: f64) -> Json {
    match serde_json::Number::from_f64(d) {
        Some(n) => Json::Number(n),
        None if d.is_nan() => Json::String("NaN".into()),
        None if d > 0.0 => Json::String("+Inf".into()),
        None => Json::String("-Inf".into()),
    }
}

/// Standard base64 with padding (what Go's `encoding/json` does for `[]byte`).
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use serde_json::json;

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(any(v)),
            ..Default::default()
        }
    }

    #[test]
    fn values_render_typed() {
        let nested = any(Value::KvlistValue(KeyValueList {
            values: vec![
                kv("a", Value::IntValue(1)),
                kv(
                    "b",
                    Value::ArrayValue(ArrayValue {
                        values: vec![
                            any(Value::StringValue("x".into())),
                            any(Value::BoolValue(true)),
                        ],
                    }),
                ),
                kv("c", Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])),
                kv("d", Value::DoubleValue(f64::NAN)),
                kv("e", Value::DoubleValue(f64::NEG_INFINITY)),
                kv("f", Value::DoubleValue(1.5)),
            ],
        }));
        assert_eq!(
            to_json(Some(&nested)),
            json!({"a": 1, "b": ["x", true], "c": "3q2+7w==", "d": "NaN", "e": "-Inf", "f": 1.5})
        );
        assert_eq!(to_json(None), Json::Null);
        assert_eq!(to_json(Some(&AnyValue { value: None })), Json::Null);
    }

    #[test]
    fn text_rendering() {
        assert_eq!(
            to_text(Some(&any(Value::StringValue("plain \"text\"".into())))),
            "plain \"text\""
        );
        assert_eq!(to_text(Some(&any(Value::IntValue(42)))), "42");
        assert_eq!(
            to_text(Some(&any(Value::KvlistValue(KeyValueList {
                values: vec![kv("msg", Value::StringValue("hi".into()))]
            })))),
            r#"{"msg":"hi"}"#
        );
        assert_eq!(to_text(None), "");
    }
}
