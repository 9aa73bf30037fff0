//! The search language end to end: the Rust OpenTelemetry SDK sends three
//! two-service traces over OTLP/gRPC to the real binary; `GET
//! /api/v1/traces?q=` finds them by attributes (numeric, regex, NOT, OR),
//! pages through them with the cursor, and refuses a bad query with the
//! error's position.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;
use skein_e2e::{wait_for, Api, Collector, QUERYABLE_WITHIN};

/// One trace: a frontend server span with attributes and a checkout child.
struct Sent {
    trace_id: String,
}

fn send(collector: &Collector) -> Vec<Sent> {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let providers: Vec<SdkTracerProvider> = ["frontend", "checkout"]
        .iter()
        .map(|service| {
            let exporter = rt.block_on(async {
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(collector.grpc_endpoint())
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .expect("gRPC span exporter")
            });
            SdkTracerProvider::builder()
                .with_resource(Resource::builder().with_service_name(*service).build())
                .with_batch_exporter(exporter)
                .build()
        })
        .collect();
    let frontend = providers[0].tracer("skein-e2e-search");
    let checkout = providers[1].tracer("skein-e2e-search");
    let base = SystemTime::now() - Duration::from_secs(60);
    // (operation, status code attribute, tier, child fails, start offset s, root duration ms)
    let plan = [
        ("GET /checkout", 500i64, "silver", true, 0u64, 300u64),
        ("GET /health", 200, "bronze", false, 10, 2),
        ("GET /items", 404, "gold", false, 20, 40),
    ];
    let mut sent = Vec::new();
    for (op, code, tier, fails, offset, dur_ms) in plan {
        let start = base + Duration::from_secs(offset);
        let root = frontend
            .span_builder(op)
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("http.status_code", code),
                KeyValue::new("customer.tier", tier),
            ])
            .start(&frontend);
        let cx = Context::current_with_span(root);
        let mut child = checkout
            .span_builder("charge")
            .with_kind(SpanKind::Client)
            .with_start_time(start + Duration::from_millis(1))
            .start_with_context(&checkout, &cx);
        if fails {
            child.set_status(Status::error("card declined"));
        }
        child.end_with_timestamp(start + Duration::from_millis(dur_ms / 2));
        sent.push(Sent {
            trace_id: cx.span().span_context().trace_id().to_string(),
        });
        cx.span()
            .end_with_timestamp(start + Duration::from_millis(dur_ms));
    }
    for p in &providers {
        p.force_flush().expect("flushing spans (export failed?)");
        p.shutdown().expect("tracer provider shutdown");
    }
    sent
}

fn search(api: &Api, q: &str, extra: &[(&str, &str)]) -> Value {
    let mut query = vec![("q", q)];
    query.extend_from_slice(extra);
    api.get_ok("/api/v1/traces", &query)
}

fn ids(v: &Value) -> Vec<String> {
    v["traces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["trace_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn search_language_over_the_rust_sdk() {
    let collector = Collector::start_fast(&[]);
    let sent = send(&collector);
    let api = collector.api();
    let (a, b, c) = (
        sent[0].trace_id.clone(),
        sent[1].trace_id.clone(),
        sent[2].trace_id.clone(),
    );
    // All six spans queryable.
    wait_for(QUERYABLE_WITHIN, "all spans searchable", || {
        let v = search(&api, "", &[]);
        let spans: u64 = v["traces"]
            .as_array()?
            .iter()
            .filter_map(|t| t["span_count"].as_u64())
            .sum();
        (spans == 6).then_some(())
    });

    let table: &[(&str, Vec<&String>)] = &[
        ("", vec![&c, &b, &a]),
        ("http.status_code>=500", vec![&a]),
        ("http.status_code>=400 AND http.status_code<500", vec![&c]),
        ("service=checkout AND status=error", vec![&a]),
        (
            "service=frontend AND NOT operation=\"GET /health\"",
            vec![&c, &a],
        ),
        (
            "customer.tier=~\"go.*\" OR http.status_code=200",
            vec![&c, &b],
        ),
        ("operation=\"GET /*\" AND duration>=250ms", vec![&a]),
        ("kind=client AND service=check*", vec![&c, &b, &a]),
        ("customer.tier!=gold", vec![&b, &a]),
    ];
    for (q, want) in table {
        let got = ids(&search(&api, q, &[]));
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "q={q}");
    }

    // The summary of the failing trace.
    let v = search(&api, "status=error", &[]);
    let t = &v["traces"][0];
    assert_eq!(t["trace_id"], a.as_str());
    assert_eq!(t["root_service"], "frontend");
    assert_eq!(t["root_operation"], "GET /checkout");
    assert_eq!(t["span_count"], 2);
    assert_eq!(t["error_count"], 1);
    assert_eq!(t["services"], serde_json::json!(["checkout", "frontend"]));
    assert_eq!(t["duration_ns"], 300_000_000);

    // Paging one trace at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut extra = vec![("limit", "1")];
        if let Some(c) = &cursor {
            extra.push(("cursor", c.as_str()));
        }
        let v = search(&api, "service=frontend", &extra);
        seen.extend(ids(&v));
        match v["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 3, "paging does not end: {seen:?}");
    }
    assert_eq!(seen, vec![c.clone(), b.clone(), a.clone()]);

    // The Jaeger search runs on the same engine (no service needed).
    let jaeger = api.search_ids(&[("tags", r#"{"customer.tier":"gold"}"#)]);
    assert_eq!(jaeger, vec![c.clone()]);

    // A syntax error: 400 with the position.
    let (status, body) = api.get(
        "/api/v1/traces",
        &[("q", "service=frontend AND (http.status_code>=500")],
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["position"], 43, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains("expected ')'"), "{msg}");
}
