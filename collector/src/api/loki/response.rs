//! Loki's JSON answers. Field order matters to Grafana's streaming parser:
//! `encodingFlags` must come before `result`, so the shapes are structs.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::super::error::{ErrorKind, Problem};
use crate::query::logql::eval::Stream;
use crate::query::logql::metric::{format_value, Labels, Series};

pub const CATEGORIZE_LABELS: &str = "categorize-labels";

#[derive(Serialize)]
pub struct Envelope<T: Serialize> {
    pub status: &'static str,
    pub data: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryData {
    pub result_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_flags: Option<Vec<&'static str>>,
    pub result: Value,
}

fn label_map(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// `{"resultType":"streams",…}`; with `categorize`, every value gets the
/// third element and `encodingFlags` is set.
pub fn streams(streams: &[Stream], categorize: bool) -> QueryData {
    let result = streams
        .iter()
        .map(|s| {
            let values: Vec<Value> = s
                .entries
                .iter()
                .map(|e| {
                    let mut v = vec![
                        Value::String(e.ts.to_string()),
                        Value::String(e.line.clone()),
                    ];
                    if categorize {
                        let mut extra = Map::new();
                        extra.insert("structuredMetadata".into(), label_map(&e.metadata));
                        extra.insert("parsed".into(), label_map(&e.parsed));
                        v.push(Value::Object(extra));
                    }
                    Value::Array(v)
                })
                .collect();
            let mut obj = Map::new();
            obj.insert("stream".into(), label_map(&s.labels));
            obj.insert("values".into(), Value::Array(values));
            Value::Object(obj)
        })
        .collect();
    QueryData {
        result_type: "streams",
        encoding_flags: categorize.then(|| vec![CATEGORIZE_LABELS]),
        result: Value::Array(result),
    }
}

fn seconds(ts_ns: u64) -> Value {
    let v = ts_ns as f64 / 1e9;
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn sample(ts_ns: u64, v: f64) -> Value {
    Value::Array(vec![seconds(ts_ns), Value::String(format_value(v))])
}

/// `matrix`: one entry per series with at least one point.
pub fn matrix(series: &[Series], at: impl Fn(usize) -> u64) -> QueryData {
    let result = series
        .iter()
        .map(|s| {
            let values: Vec<Value> = s
                .points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|v| sample(at(i), v)))
                .collect();
            let mut obj = Map::new();
            obj.insert("metric".into(), label_map(&s.labels));
            obj.insert("values".into(), Value::Array(values));
            Value::Object(obj)
        })
        .collect();
    QueryData {
        result_type: "matrix",
        encoding_flags: None,
        result: Value::Array(result),
    }
}

/// `vector` at `ts`: series with a value at the (only) step.
pub fn vector(series: &[Series], ts: u64) -> QueryData {
    let result = series
        .iter()
        .filter_map(|s| {
            let v = s.points.first().copied().flatten()?;
            let mut obj = Map::new();
            obj.insert("metric".into(), label_map(&s.labels));
            obj.insert("value".into(), sample(ts, v));
            Some(Value::Object(obj))
        })
        .collect();
    QueryData {
        result_type: "vector",
        encoding_flags: None,
        result: Value::Array(result),
    }
}

pub fn scalar(v: f64, ts: u64) -> QueryData {
    QueryData {
        result_type: "scalar",
        encoding_flags: None,
        result: sample(ts, v),
    }
}

pub fn success<T: Serialize>(data: T) -> Response {
    axum::Json(Envelope {
        status: "success",
        data,
    })
    .into_response()
}

/// `{"status":"error","errorType":…,"error":…}` with the problem's status.
pub fn error(p: &Problem) -> Response {
    let error_type = match p.kind {
        ErrorKind::BadRequest | ErrorKind::TooLarge => "bad_data",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Internal => "internal",
        ErrorKind::Unavailable => "unavailable",
    };
    let body = serde_json::json!({
        "status": "error",
        "errorType": error_type,
        "error": p.message,
    });
    let status = match p.kind {
        ErrorKind::TooLarge => StatusCode::BAD_REQUEST,
        k => k.status(),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
