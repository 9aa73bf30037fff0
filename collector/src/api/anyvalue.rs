//! OTLP `AnyValue` → JSON, shared by the Jaeger and native views.
//!
//! Owns one rendering of attribute values: strings, bools and numbers stay
//! typed, bytes become base64, arrays and key/value lists become JSON arrays
//! and objects, non-finite doubles become the strings `NaN`, `+Inf`, `-Inf`
//! (JSON has no such numbers), and a missing value is `null`.
//!
//! Two forms of the same rendering: [`to_json`] builds a `serde_json::Value`,
//! [`AttrsJson`] and [`ValueJson`] serialize straight from the protobuf
//! without building one (the 100k-span trace answer spends most of its time
//! here otherwise).

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
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

/// Attributes serialized as a JSON object, exactly as
/// [`attributes_to_json`] renders them (keys sorted, a repeated key: the last
/// one wins), without building the intermediate map.
#[derive(Debug, Clone, Copy)]
pub struct AttrsJson<'a>(pub &'a [KeyValue]);

impl Serialize for AttrsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let attrs = self.0;
        // Indexes sorted by key, stable, so the last of equal keys is last.
        let mut order: Vec<usize> = (0..attrs.len()).collect();
        order.sort_by(|&a, &b| attrs[a].key.cmp(&attrs[b].key));
        order.dedup_by(|later, earlier| {
            let same = attrs[*later].key == attrs[*earlier].key;
            if same {
                *earlier = *later;
            }
            same
        });
        let mut map = serializer.serialize_map(Some(order.len()))?;
        for i in order {
            let kv = &attrs[i];
            map.serialize_entry(&kv.key, &ValueJson(kv.value.as_ref()))?;
        }
        map.end()
    }
}

/// One attribute value serialized as [`to_json`] renders it.
#[derive(Debug, Clone, Copy)]
pub struct ValueJson<'a>(pub Option<&'a AnyValue>);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.and_then(|v| v.value.as_ref()) {
            None => serializer.serialize_unit(),
            Some(Value::StringValue(s)) => serializer.serialize_str(s),
            Some(Value::BoolValue(b)) => serializer.serialize_bool(*b),
            Some(Value::IntValue(i)) => serializer.serialize_i64(*i),
            Some(Value::DoubleValue(d)) if d.is_finite() => serializer.serialize_f64(*d),
            Some(Value::DoubleValue(d)) => serializer.serialize_str(if d.is_nan() {
                "NaN"
            } else if *d > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            }),
            Some(Value::BytesValue(bytes)) => serializer.serialize_str(&base64(bytes)),
            Some(Value::ArrayValue(array)) => {
                let mut seq = serializer.serialize_seq(Some(array.values.len()))?;
                for v in &array.values {
                    seq.serialize_element(&ValueJson(Some(v)))?;
                }
                seq.end()
            }
            Some(Value::KvlistValue(list)) => AttrsJson(&list.values).serialize(serializer),
            Some(Value::StringValueStrindex(i)) => serializer.serialize_i64(i64::from(*i)),
        }
    }
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
    fn streaming_form_matches_the_value_form() {
        let attrs = vec![
            kv("z", Value::StringValue("last".into())),
            kv("a", Value::IntValue(-7)),
            kv("dup", Value::StringValue("first".into())),
            kv("m", Value::DoubleValue(f64::INFINITY)),
            kv("dup", Value::BoolValue(false)),
            kv("n", Value::DoubleValue(0.1)),
            kv("b", Value::BytesValue(vec![1, 2, 3])),
            kv("s", Value::StringValueStrindex(3)),
            KeyValue {
                key: "none".into(),
                value: None,
                ..Default::default()
            },
            kv(
                "nested",
                Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("y", Value::IntValue(1)),
                        kv("x", Value::DoubleValue(f64::NAN)),
                        kv("y", Value::IntValue(2)),
                    ],
                }),
            ),
            kv(
                "list",
                Value::ArrayValue(ArrayValue {
                    values: vec![any(Value::IntValue(1)), AnyValue { value: None }],
                }),
            ),
        ];
        let streamed = serde_json::to_string(&AttrsJson(&attrs)).unwrap();
        let built = serde_json::to_string(&attributes_to_json(&attrs)).unwrap();
        assert_eq!(streamed, built);
        assert!(
            streamed.starts_with(r#"{"a":-7,"b":"AQID","dup":false,"#),
            "{streamed}"
        );
        assert_eq!(serde_json::to_string(&AttrsJson(&[])).unwrap(), "{}");
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
