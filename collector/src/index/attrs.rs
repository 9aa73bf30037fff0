//! Turning OTLP attribute values into index terms and text, without JSON and
//! with reusable buffers.

use std::fmt::Write;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// Longest `key=value` term indexed; longer ones are not searchable (still stored).
pub(crate) const MAX_TAG_BYTES: usize = 4096;

/// Write `key=value` into `out` (cleared first). Strings as is, ints in
/// decimal, bools `true`/`false`, doubles with Rust's `{}`. Arrays, maps,
/// bytes and empty values are not indexed: returns false.
pub(crate) fn tag_term(out: &mut String, key: &str, value: Option<&AnyValue>) -> bool {
    out.clear();
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return false;
    };
    out.push_str(key);
    out.push('=');
    match value {
        Value::StringValue(s) => out.push_str(s),
        Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        Value::DoubleValue(d) => {
            let _ = write!(out, "{d}");
        }
        Value::ArrayValue(_)
        | Value::KvlistValue(_)
        | Value::BytesValue(_)
        | Value::StringValueStrindex(_) => return false,
    }
    out.len() <= MAX_TAG_BYTES
}

/// `key=value` terms of a list of attributes, keeping the strings' buffers
/// between uses.
#[derive(Default)]
pub(crate) struct TagList {
    terms: Vec<String>,
    len: usize,
}

impl TagList {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn extend_from(&mut self, attrs: &[KeyValue]) {
        for kv in attrs {
            if self.len == self.terms.len() {
                self.terms.push(String::new());
            }
            if tag_term(&mut self.terms[self.len], &kv.key, kv.value.as_ref()) {
                self.len += 1;
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.terms[..self.len].iter().map(String::as_str)
    }

    pub fn byte_len(&self) -> usize {
        self.iter().map(str::len).sum()
    }
}

/// Plain text of a value for full-text indexing (log bodies): strings as is,
/// scalars formatted, bytes as hex, arrays and maps flattened JSON-like.
pub(crate) fn any_value_text(value: &AnyValue, out: &mut String) {
    match &value.value {
        None => {}
        Some(Value::StringValue(s)) => out.push_str(s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => {
            let _ = write!(out, "{d}");
        }
        Some(Value::BytesValue(b)) => push_hex(out, b),
        // A profiles string-table index: meaningless without the table.
        Some(Value::StringValueStrindex(_)) => {}
        Some(Value::ArrayValue(a)) => {
            out.push('[');
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                any_value_text(v, out);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(kv)) => {
            out.push('{');
            for (i, kv) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&kv.key);
                out.push_str(": ");
                if let Some(v) = &kv.value {
                    any_value_text(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// Append lowercase hex of `bytes`.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
}

/// Lowercase hex of `bytes` in `out` (cleared first).
pub(crate) fn hex_into<'a>(out: &'a mut String, bytes: &[u8]) -> &'a str {
    out.clear();
    push_hex(out, bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    #[test]
    fn tag_terms_format_scalars_and_skip_composites() {
        let mut s = String::new();
        assert!(tag_term(&mut s, "k", Some(&v(Value::IntValue(-5)))));
        assert_eq!(s, "k=-5");
        assert!(tag_term(&mut s, "k", Some(&v(Value::DoubleValue(1.5)))));
        assert_eq!(s, "k=1.5");
        assert!(tag_term(&mut s, "k", Some(&v(Value::BoolValue(true)))));
        assert_eq!(s, "k=true");
        assert!(tag_term(
            &mut s,
            "k",
            Some(&v(Value::StringValue("a b".into())))
        ));
        assert_eq!(s, "k=a b");
        assert!(!tag_term(&mut s, "k", Some(&v(Value::BytesValue(vec![1])))));
        assert!(!tag_term(&mut s, "k", None));
        let long = "x".repeat(MAX_TAG_BYTES);
        assert!(!tag_term(&mut s, "k", Some(&v(Value::StringValue(long)))));
    }

    #[test]
    fn hex_is_lowercase() {
        let mut s = String::new();
        assert_eq!(hex_into(&mut s, &[0xab, 0x01]), "ab01");
    }
}
