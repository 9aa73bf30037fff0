//! Trace reconstruction end to end with the Rust OpenTelemetry SDK: three
//! services, one of them with a clock 2 s behind (clock-skew correction on
//! and off), and a trace whose middle span is never sent (orphans under a
//! placeholder). Read back through the Jaeger API and the native
//! `/api/v1/traces/{id}`.

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::Context;
use serde_json::{json, Value};
use skein_e2e::chains::{self, at, base_time, native_span, ns, wait_native_trace};
use skein_e2e::Collector;

/// Ids of what [`send_skewed`] sent.
struct Sent {
    trace_id: String,
    front_server: String,
    front_client: String,
    order_server: String,
    order_client: String,
    inventory: String,
    base: std::time::SystemTime,
}

/// frontend SERVER [0,100] → frontend CLIENT [10,90] → order SERVER
/// [20,80] → order CLIENT [30,70] → inventory SERVER [35,65] (ms after
/// `base`), except that order's clock runs 2 s behind: its spans are sent
/// 2000 ms early.
fn send_skewed(collector: &Collector) -> Sent {
    let base = base_time();
    let providers = [
        chains::provider(collector, "frontend"),
        chains::provider(collector, "order"),
        chains::provider(collector, "inventory"),
    ];
    let t: Vec<_> = providers.iter().map(|p| p.tracer("chains-e2e")).collect();
    let skew = -2000;

    let root = t[0]
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(base, 0))
        .start(&t[0]);
    let root_cx = Context::current_with_span(root);
    let client = t[0]
        .span_builder("POST /order")
        .with_kind(SpanKind::Client)
        .with_start_time(at(base, 10))
        .start_with_context(&t[0], &root_cx);
    let client_cx = root_cx.with_span(client);
    let server = t[1]
        .span_builder("create order")
        .with_kind(SpanKind::Server)
        .with_start_time(at(base, 20 + skew))
        .start_with_context(&t[1], &client_cx);
    let server_cx = client_cx.with_span(server);
    let order_client = t[1]
        .span_builder("POST /reserve")
        .with_kind(SpanKind::Client)
        .with_start_time(at(base, 30 + skew))
        .start_with_context(&t[1], &server_cx);
    let order_client_cx = server_cx.with_span(order_client);
    let mut inventory = t[2]
        .span_builder("reserve stock")
        .with_kind(SpanKind::Server)
        .with_start_time(at(base, 35))
        .start_with_context(&t[2], &order_client_cx);

    let id = |cx: &Context| cx.span().span_context().span_id().to_string();
    let sent = Sent {
        trace_id: root_cx.span().span_context().trace_id().to_string(),
        front_server: id(&root_cx),
        front_client: id(&client_cx),
        order_server: id(&server_cx),
        order_client: id(&order_client_cx),
        inventory: inventory.span_context().span_id().to_string(),
        base,
    };
    inventory.end_with_timestamp(at(base, 65));
    order_client_cx
        .span()
        .end_with_timestamp(at(base, 70 + skew));
    server_cx.span().end_with_timestamp(at(base, 80 + skew));
    client_cx.span().end_with_timestamp(at(base, 90));
    root_cx.span().end_with_timestamp(at(base, 100));
    chains::flush(&providers);
    sent
}

fn jaeger_span<'a>(trace: &'a Value, span_id: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["spanID"] == span_id))
        .unwrap_or_else(|| panic!("no span {span_id} in {trace}"))
}

fn us(sent: &Sent, ms: i64) -> u64 {
    ns(sent.base, ms) / 1000
}

#[test]
fn callee_two_seconds_behind_is_shifted_into_its_caller() {
    let collector = Collector::start_fast(&[]);
    let sent = send_skewed(&collector);
    let api = collector.api();
    let native = wait_native_trace(&api, &sent.trace_id, 5, &[]);

    // Native API: order's two spans moved +2000 ms (centred in the client
    // span: 80 ms client, 60 ms server → 10 ms either side), inventory not.
    let shift = 2_000_000_000i64;
    let adjusted: Vec<(String, i64)> = native["adjustments"]
        .as_array()
        .expect("adjustments")
        .iter()
        .map(|a| {
            (
                a["span_id"].as_str().unwrap_or("").to_string(),
                a["shift_ns"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        adjusted,
        vec![
            (sent.order_server.clone(), shift),
            (sent.order_client.clone(), shift)
        ],
        "{}",
        native["adjustments"]
    );
    let server = native_span(&native, &sent.order_server);
    assert_eq!(server["start_unix_nano"], ns(sent.base, 20));
    assert_eq!(server["end_unix_nano"], ns(sent.base, 80));
    assert_eq!(
        server["warnings"],
        json!(["clock skew adjusted by 2000.000ms"])
    );
    let inventory = native_span(&native, &sent.inventory);
    assert_eq!(inventory["start_unix_nano"], ns(sent.base, 35));
    assert_eq!(inventory["warnings"], json!([]));
    assert_eq!(native["roots"], json!([sent.front_server]));
    assert_eq!(native["orphans"], json!([]));
    assert_eq!(
        native["services"],
        json!(["frontend", "inventory", "order"])
    );
    // The chain down to inventory is the critical path.
    let path: Vec<&str> = native["critical_path"]
        .as_array()
        .expect("critical_path")
        .iter()
        .filter_map(|e| e["span_id"].as_str())
        .collect();
    assert_eq!(
        path,
        vec![
            sent.front_server.as_str(),
            sent.front_client.as_str(),
            sent.order_server.as_str(),
            sent.order_client.as_str(),
            sent.inventory.as_str()
        ]
    );

    // Jaeger API: the same times (µs) and the warning on the moved spans.
    let trace = api.wait_trace(&sent.trace_id, 5).0;
    let server = jaeger_span(&trace, &sent.order_server);
    assert_eq!(server["startTime"], us(&sent, 20));
    assert_eq!(server["duration"], 60_000);
    assert_eq!(
        server["warnings"],
        json!(["clock skew adjusted by 2000.000ms"])
    );
    let order_client = jaeger_span(&trace, &sent.order_client);
    assert_eq!(order_client["startTime"], us(&sent, 30));
    assert_eq!(
        order_client["warnings"],
        json!(["clock skew adjusted by 2000.000ms"])
    );
    for id in [&sent.front_server, &sent.front_client, &sent.inventory] {
        assert_eq!(jaeger_span(&trace, id)["warnings"], Value::Null, "{id}");
    }
    // Search results carry the same adjustment.
    let found = api.search(&[("service", "order")]);
    let found = found
        .iter()
        .find(|t| t.id() == sent.trace_id)
        .expect("the trace in search results");
    assert_eq!(
        jaeger_span(&found.0, &sent.order_server)["startTime"],
        us(&sent, 20)
    );
}

#[test]
fn clock_skew_adjust_false_shows_times_as_sent() {
    let collector = Collector::start_fast(&["--clock-skew-adjust=false"]);
    let sent = send_skewed(&collector);
    let api = collector.api();
    let native = wait_native_trace(&api, &sent.trace_id, 5, &[]);
    assert_eq!(native["adjustments"], json!([]));
    let server = native_span(&native, &sent.order_server);
    assert_eq!(server["start_unix_nano"], ns(sent.base, 20 - 2000));
    assert_eq!(server["warnings"], json!([]));

    let trace = api.wait_trace(&sent.trace_id, 5).0;
    let server = jaeger_span(&trace, &sent.order_server);
    assert_eq!(server["startTime"], us(&sent, 20 - 2000));
    assert_eq!(server["warnings"], Value::Null);
}

#[test]
fn middle_span_never_sent_leaves_orphans_under_a_placeholder() {
    let collector = Collector::start_fast(&[]);
    let base = base_time();
    let providers = [
        chains::provider(&collector, "frontend"),
        chains::provider(&collector, "order"),
        chains::provider(&collector, "inventory"),
    ];
    let t: Vec<_> = providers.iter().map(|p| p.tracer("chains-e2e")).collect();
    let root = t[0]
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(base, 0))
        .start(&t[0]);
    let root_cx = Context::current_with_span(root);
    let trace_id = root_cx.span().span_context().trace_id();
    // order's server span: its id travels downstream, but it is never exported.
    let missing = opentelemetry::trace::SpanId::from_bytes(rand_id());
    let missing_cx = Context::new().with_remote_span_context(SpanContext::new(
        trace_id,
        missing,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    let db = t[1]
        .span_builder("load order")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(base, 20))
        .start_with_context(&t[1], &missing_cx);
    let db_cx = missing_cx.with_span(db);
    let mut inventory = t[2]
        .span_builder("reserve stock")
        .with_kind(SpanKind::Server)
        .with_start_time(at(base, 30))
        .start_with_context(&t[2], &db_cx);
    let trace_hex = trace_id.to_string();
    let root_id = root_cx.span().span_context().span_id().to_string();
    let db_id = db_cx.span().span_context().span_id().to_string();
    let inventory_id = inventory.span_context().span_id().to_string();
    let missing_id = missing.to_string();
    inventory.end_with_timestamp(at(base, 50));
    db_cx.span().end_with_timestamp(at(base, 60));
    root_cx.span().end_with_timestamp(at(base, 100));
    chains::flush(&providers);

    let api = collector.api();
    let native = wait_native_trace(&api, &trace_hex, 3, &[]);
    assert_eq!(native["span_count"], 3);
    assert_eq!(native["roots"], json!([root_id, missing_id]));
    assert_eq!(native["orphans"], json!([db_id]));
    let placeholder = native_span(&native, &missing_id);
    assert_eq!(placeholder["missing"], true);
    assert_eq!(placeholder["children"], json!([db_id]));
    assert_eq!(placeholder["start_unix_nano"], ns(base, 20));
    let db = native_span(&native, &db_id);
    assert_eq!(db["parent_span_id"], missing_id);
    assert_eq!(db["children"], json!([inventory_id]));
    assert!(db["warnings"][0]
        .as_str()
        .unwrap_or("")
        .contains("never received"));
    // The summary form lists the same structure without span bodies.
    let summary = wait_native_trace(&api, &trace_hex, 3, &[("fields", "summary")]);
    assert!(summary.get("spans").is_none());
    assert_eq!(summary["orphans"], json!([db_id]));

    // Jaeger: the placeholder is a span with a warning, the orphan its child.
    let trace = api.wait_trace(&trace_hex, 4).0;
    assert_eq!(trace["spans"].as_array().map(|s| s.len()), Some(4));
    let placeholder = jaeger_span(&trace, &missing_id);
    assert_eq!(placeholder["operationName"], "missing span");
    assert!(placeholder["warnings"][0]
        .as_str()
        .unwrap_or("")
        .contains("was never received"));
    let db = jaeger_span(&trace, &db_id);
    assert_eq!(db["references"][0]["refType"], "CHILD_OF");
    assert_eq!(db["references"][0]["spanID"], missing_id);
    assert!(db["warnings"][0]
        .as_str()
        .unwrap_or("")
        .contains("never received"));
}

fn rand_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    id.copy_from_slice(&skein_e2e::otlp::new_span_id());
    id[0] |= 0x80; // never all zeroes
    id
}
