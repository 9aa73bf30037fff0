//! `/api/v1/logs` tests: parameters (each bad one → 400 naming it), the
//! row → JSON mapping, order and store errors.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValueList;
use serde_json::json;

use super::{parse_log_query, parse_severity, DEFAULT_LIMIT, MAX_LIMIT};
use crate::api::params::Params;
use crate::api::testing::*;
use crate::query::{LogQuery, QueryError};

const T0: u64 = 1_795_428_000_000_000_000; // 2026-11-23T10:00:00Z

fn fixture() -> FakeLogs {
    let mut with_ids = log_row(
        "checkout",
        T0 + 2,
        17,
        s("payment failed"),
        vec![
            kv("attempt", Value::IntValue(3)),
            kv("ok", Value::BoolValue(false)),
            kv("amount", Value::DoubleValue(9.5)),
        ],
    );
    with_ids.record.severity_text = "Error".into();
    with_ids.record.trace_id = tid(1).to_vec();
    with_ids.record.span_id = sid(2);
    let structured = log_row(
        "checkout",
        T0 + 1,
        9,
        Value::KvlistValue(KeyValueList {
            values: vec![kv("msg", s("hi")), kv("n", Value::IntValue(1))],
        }),
        vec![],
    );
    let mut observed_only = log_row("cart", 0, 0, s("no timestamp"), vec![]);
    observed_only.record.observed_time_unix_nano = T0 + 3;
    // Stored order deliberately not newest first.
    FakeLogs {
        rows: vec![structured, with_ids, observed_only],
        ..Default::default()
    }
}

fn query(pairs: &[(&str, &str)]) -> Result<LogQuery, crate::api::Problem> {
    parse_log_query(&Params::from_pairs(pairs))
}

#[tokio::test]
async fn logs_shape_and_newest_first() {
    let app = app(FakeTraces::default(), fixture());
    let a = app.get("/api/v1/logs").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.json(),
        json!({"logs": [
            {
                "timestamp_unix_nano": T0 + 3, "service": "cart", "severity_text": "", "severity_number": 0,
                "body": "no timestamp", "trace_id": "", "span_id": "", "attributes": {}
            },
            {
                "timestamp_unix_nano": T0 + 2, "service": "checkout", "severity_text": "Error", "severity_number": 17,
                "body": "payment failed", "trace_id": hex::encode(tid(1)), "span_id": "1000000000000002",
                "attributes": {"attempt": 3, "ok": false, "amount": 9.5}
            },
            {
                "timestamp_unix_nano": T0 + 1, "service": "checkout", "severity_text": "INFO", "severity_number": 9,
                "body": "{\"msg\":\"hi\",\"n\":1}", "trace_id": "", "span_id": "", "attributes": {}
            },
        ]})
    );
}

#[tokio::test]
async fn parameters_reach_the_store() {
    let app = app(FakeTraces::default(), fixture());
    let a = app
        .get(&format!(
            "/api/v1/logs?query=payment%20AND%20failed&service=checkout&severity=WARNING&trace_id={}\
             &start=2026-11-23T10:00:00Z&end={}&limit=2",
            hex::encode(tid(1)),
            T0 + 60_000_000_000
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["logs"].as_array().map(Vec::len), Some(2));
    let q = app.logs.last_query.lock().clone().expect("searched");
    assert_eq!(
        q,
        LogQuery {
            text: Some("payment AND failed".into()),
            service: Some("checkout".into()),
            min_severity: Some(13),
            trace_id: Some(tid(1)),
            start_unix_nano: Some(T0),
            end_unix_nano: Some(T0 + 60_000_000_000),
            limit: 2,
        }
    );
}

#[test]
fn severity_names_and_numbers() {
    let table = [
        ("trace", 1),
        ("DEBUG", 5),
        ("Info", 9),
        ("warn", 13),
        ("warning", 13),
        ("error", 17),
        ("fatal", 21),
        ("1", 1),
        ("24", 24),
        ("13", 13),
    ];
    for (raw, want) in table {
        assert_eq!(parse_severity(raw), Ok(want), "{raw}");
    }
    for bad in ["0", "25", "-1", "verbose", "99999999999", "1.5"] {
        assert!(parse_severity(bad).is_err(), "{bad}");
    }
}

#[test]
fn times_limits_and_defaults() {
    assert_eq!(
        query(&[]).unwrap(),
        LogQuery {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        }
    );
    let q = query(&[
        ("start", "2026-11-23T12:00:00+02:00"),
        ("end", "1795428001000000000"),
    ])
    .unwrap();
    assert_eq!(
        (q.start_unix_nano, q.end_unix_nano),
        (Some(T0), Some(T0 + 1_000_000_000))
    );
    assert_eq!(query(&[("limit", "5000")]).unwrap().limit, 5000);
    assert_eq!(query(&[("limit", "100000")]).unwrap().limit, MAX_LIMIT);
    assert_eq!(query(&[("query", ""), ("service", "")]).unwrap().text, None);
}

#[tokio::test]
async fn bad_parameters_answer_400_naming_them() {
    let app = app(FakeTraces::default(), fixture());
    let cases = [
        ("severity=loud", "'severity'"),
        ("severity=0", "'severity'"),
        ("severity=25", "'severity'"),
        ("start=yesterday", "'start'"),
        ("start=2026-11-23", "'start'"),
        ("end=-5", "'end'"),
        (
            "start=2026-11-23T10:00:01Z&end=2026-11-23T10:00:00Z",
            "'end'",
        ),
        ("limit=0", "'limit'"),
        ("limit=many", "'limit'"),
        ("trace_id=abc", "'trace_id'"),
        ("trace_id=zz000000000000000000000000000000", "'trace_id'"),
    ];
    for (q, name) in cases {
        let a = app.get(&format!("/api/v1/logs?{q}")).await;
        assert_native_error(&a, 400, &format!("invalid parameter {name}"));
    }
    assert!(
        app.logs.last_query.lock().is_none(),
        "no bad query reached the store"
    );
}

#[tokio::test]
async fn store_errors() {
    let store = FakeLogs {
        fail: Some(|| QueryError::Invalid("unbalanced quote".into())),
        ..fixture()
    };
    let app = app(FakeTraces::default(), store);
    assert_native_error(
        &app.get("/api/v1/logs?query=%22x").await,
        400,
        "unbalanced quote",
    );

    let store = FakeLogs {
        fail: Some(|| QueryError::Storage("segment missing".into())),
        ..fixture()
    };
    let app = crate::api::testing::app(FakeTraces::default(), store);
    assert_native_error(&app.get("/api/v1/logs").await, 500, "segment missing");
}
