//! `/api/v1/traces` tests: parameters and error shapes over the fake store,
//! and paging through 1,000 matching traces over a real index.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::Request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use serde_json::{json, Value as Json};
use tower::ServiceExt;

use super::{parse_search, SearchError, DEFAULT_LIMIT, MAX_LIMIT};
use crate::api::params::Params;
use crate::api::testing::*;
use crate::api::{router, ApiState};
use crate::index::{open_with_clock, IndexConfig, IndexInput, ManualClock, Signal};
use crate::query::lang::parse;
use crate::query::{SearchCursor, TracePage, TraceSummary};
use crate::telemetry::Registry;

const T0: u64 = 1_795_428_000_000_000_000; // 2026-11-23T10:00:00Z

#[test]
fn parameters() {
    let p = |pairs: &[(&str, &str)]| parse_search(&Params::from_pairs(pairs));
    let s = p(&[]).unwrap();
    assert_eq!((s.filter, s.limit, s.cursor), (None, DEFAULT_LIMIT, None));
    let cursor = SearchCursor {
        key: 5,
        trace_id: tid(1),
        snapshot: 9,
    };
    let s = p(&[
        ("q", "service=a AND duration>1ms"),
        ("start", "2026-11-23T10:00:00Z"),
        ("end", "1795428060000000000"),
        ("limit", "5000"),
        ("cursor", &cursor.encode()),
    ])
    .unwrap();
    assert_eq!(s.filter, parse("service=a AND duration>1ms").unwrap());
    assert_eq!(s.start_unix_nano, Some(T0));
    assert_eq!(s.end_unix_nano, Some(T0 + 60_000_000_000));
    assert_eq!(s.limit, MAX_LIMIT);
    assert_eq!(s.cursor, Some(cursor));

    for (pairs, name) in [
        (&[("limit", "0")][..], "'limit'"),
        (&[("limit", "x")][..], "'limit'"),
        (&[("start", "soon")][..], "'start'"),
        (&[("start", "20"), ("end", "10")][..], "'end'"),
        (&[("cursor", "garbage")][..], "'cursor'"),
    ] {
        match p(pairs) {
            Err(SearchError::Other(problem)) => {
                assert_eq!(problem.status(), 400);
                assert!(problem.message.contains(name), "{}", problem.message);
            }
            other => panic!("{pairs:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn answer_shape_and_errors() {
    let page = TracePage {
        traces: vec![TraceSummary {
            trace_id: tid(7),
            root_service: "api".into(),
            root_operation: "GET /".into(),
            start_unix_nano: T0,
            duration_ns: 1500,
            span_count: 3,
            error_count: 1,
            services: vec!["api".into(), "db".into()],
            matched_unix_nano: T0 + 10,
        }],
        next_cursor: Some(SearchCursor {
            key: T0 + 10,
            trace_id: tid(7),
            snapshot: 3,
        }),
    };
    let app = app(
        FakeTraces {
            search_page: page.clone(),
            ..Default::default()
        },
        FakeLogs::default(),
    );
    let a = app.get("/api/v1/traces?q=error%3Dtrue&limit=1").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let next = page.next_cursor.map(|c| c.encode());
    assert_eq!(
        a.json(),
        json!({"traces": [{
            "trace_id": hex::encode(tid(7)),
            "root_service": "api",
            "root_operation": "GET /",
            "start_unix_nano": T0,
            "duration_ns": 1500,
            "span_count": 3,
            "error_count": 1,
            "services": ["api", "db"],
            "matched_unix_nano": T0 + 10,
        }], "next_cursor": next})
    );
    let seen = app.traces.last_search.lock().clone().unwrap();
    assert_eq!(seen.filter, parse("error=true").unwrap());
    assert_eq!(seen.limit, 1);

    // A syntax error: 400 with the position.
    let a = app.get("/api/v1/traces?q=service%3D").await;
    assert_eq!(a.status, 400);
    let v = a.json();
    assert_eq!(v["position"], 8);
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("invalid parameter 'q': at position 8:"),
        "{msg}"
    );
    assert_native_error(&app.get("/api/v1/traces?limit=-3").await, 400, "'limit'");
    assert_native_error(&app.get("/api/v1/traces?cursor=%21").await, 400, "'cursor'");
    assert_eq!(
        app.state
            .metrics
            .errors
            .with_label_values(&[super::TRACES, "400"])
            .get(),
        3
    );

    let failing = crate::api::testing::app(
        FakeTraces {
            fail: Some(|| crate::query::QueryError::Storage("disk".into())),
            ..Default::default()
        },
        FakeLogs::default(),
    );
    assert_native_error(&failing.get("/api/v1/traces").await, 500, "disk");
}

async fn get_json(router: &axum::Router, uri: &str) -> Json {
    let response = router
        .clone()
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    assert_eq!(status, 200, "{uri}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn request(spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource("shop", vec![])),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// A trace id from a number (big-endian in the last bytes).
fn big_tid(n: u32) -> Vec<u8> {
    let mut id = vec![0xcd; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    id
}

/// 1,000 matching traces (plus non-matching ones) paged with `limit=100`
/// through the router: each comes exactly once, newest first, also while
/// new traces arrive between pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_a_thousand_traces() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    let mut cfg = IndexConfig::new(dir.path());
    cfg.writer_threads = 1;
    cfg.writer_memory_bytes = 32 << 20;
    let now = UNIX_EPOCH + Duration::from_nanos(T0);
    let clock = Arc::new(ManualClock::new(now));
    let storage = open_with_clock(cfg, &registry, clock).unwrap();
    let mut indexer = storage.indexer;

    let mk = |n: u32, tenant: &str, start: u64| {
        let mut root = span(0, 1, None, "GET /items", start, start + 2_000_000);
        root.trace_id = big_tid(n);
        let mut child = span(0, 2, Some(1), "load", start + 1_000, start + 1_000_000);
        child.trace_id = big_tid(n);
        child.attributes = vec![kv("tenant", s(tenant))];
        [root, child]
    };
    let mut spans = Vec::new();
    for n in 0..1200u32 {
        let tenant = if n % 6 == 5 { "other" } else { "acme" };
        spans.extend(mk(n, tenant, T0 + u64::from(n) * 1_000_000_000));
    }
    let matching: HashSet<String> = (0..1200u32)
        .filter(|n| n % 6 != 5)
        .take(1000)
        .map(|n| hex::encode(big_tid(n)))
        .collect();
    // Exactly 1,000 match: drop the matching traces beyond the first 1,000.
    spans.retain(|sp| {
        let n = u32::from_be_bytes([
            sp.trace_id[12],
            sp.trace_id[13],
            sp.trace_id[14],
            sp.trace_id[15],
        ]);
        n % 6 == 5 || matching.contains(&hex::encode(&sp.trace_id))
    });
    let mut lsn = 10;
    {
        let sink = indexer.sink_mut();
        sink.apply(&IndexInput::new(Signal::Spans, request(spans), lsn), now)
            .unwrap();
        sink.commit(now).unwrap();
    }
    let state = ApiState::new(storage.spans.clone(), storage.logs.clone(), registry).unwrap();
    let app = router(state);

    let mut seen: Vec<String> = Vec::new();
    let mut last_key = u64::MAX;
    let mut uri = "/api/v1/traces?q=tenant%3Dacme&limit=100".to_owned();
    let mut pages = 0;
    loop {
        let v = get_json(&app, &uri).await;
        let traces = v["traces"].as_array().cloned().unwrap_or_default();
        for t in &traces {
            let key = t["matched_unix_nano"].as_u64().unwrap();
            assert!(key <= last_key, "newest first");
            last_key = key;
            assert_eq!(t["span_count"], 2);
            assert_eq!(t["root_operation"], "GET /items");
            seen.push(t["trace_id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        // New matching traces arrive between pages (newer than all others).
        lsn += 1;
        let fresh = mk(
            5000 + pages,
            "acme",
            T0 + 10_000_000_000_000 + u64::from(pages),
        );
        let sink = indexer.sink_mut();
        sink.apply(
            &IndexInput::new(Signal::Spans, request(fresh.to_vec()), lsn),
            now,
        )
        .unwrap();
        sink.commit(now).unwrap();
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/traces?q=tenant%3Dacme&limit=100&cursor={c}"),
            None => break,
        }
        assert!(pages <= 11, "too many pages");
    }
    assert_eq!(seen.len(), 1000);
    let unique: HashSet<String> = seen.into_iter().collect();
    assert_eq!(unique, matching);
}
