//! The worker on real OTLP bytes: spans of one trace split over requests
//! from different services, the metrics and graph they produce, peers of
//! uninstrumented callees, saving and replay after a restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use parking_lot::Mutex;
use prost::Message;

use super::dependencies::pairing::Pairer;
use super::queue::{Queue, Record};
use super::servicegraph::ServiceGraph;
use super::spanmetrics::SpanMetrics;
use super::wire::{kind, STATUS_ERROR};
use super::worker::{Interner, Worker};
use super::*;
use crate::index::ManualClock;
use crate::telemetry::{encode_text, Registry};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

struct S {
    span: u8,
    parent: u8,
    kind: i32,
    ms: u64,
    error: bool,
    attrs: Vec<KeyValue>,
}

fn s(span: u8, parent: u8, kind: i32, ms: u64) -> S {
    S {
        span,
        parent,
        kind,
        ms,
        error: false,
        attrs: vec![],
    }
}

fn request(service: &str, trace: u8, spans: Vec<S>) -> Vec<u8> {
    let start = now_ns() - 5_000_000_000;
    let spans = spans
        .into_iter()
        .map(|x| Span {
            trace_id: vec![trace; 16],
            span_id: vec![1, 0, 0, 0, 0, 0, 0, x.span],
            parent_span_id: if x.parent == 0 {
                vec![]
            } else {
                vec![1, 0, 0, 0, 0, 0, 0, x.parent]
            },
            name: format!("op{}", x.span),
            kind: x.kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + x.ms * 1_000_000,
            attributes: x.attrs,
            status: x.error.then(|| Status {
                code: STATUS_ERROR,
                message: String::new(),
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

struct Rig {
    worker: Worker,
    registry: Registry,
    clock: Arc<ManualClock>,
    saved: Arc<Mutex<Vec<u64>>>,
    _dir: tempfile::TempDir,
}

fn rig_in(dir: tempfile::TempDir, max_series: usize) -> Rig {
    let registry = Registry::new();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let metrics = DeriveMetrics::register(&registry).unwrap();
    let span_metrics = Arc::new(Mutex::new(SpanMetrics::new(max_series)));
    let service_graph = Arc::new(Mutex::new(ServiceGraph::new(max_series)));
    registry
        .register(Box::new(
            exposition::DerivedCollector::new(span_metrics.clone(), service_graph.clone()).unwrap(),
        ))
        .unwrap();
    let graph = DependencyGraph::open(
        dir.path().join("deps"),
        Duration::from_secs(86_400),
        max_series,
        clock.clone(),
    )
    .unwrap();
    let saved = Arc::new(Mutex::new(Vec::new()));
    let saved2 = saved.clone();
    let worker = Worker::new(
        Arc::new(Queue::new(1 << 20, metrics.clone())),
        span_metrics,
        service_graph,
        graph,
        Pairer::new(1000, 10_000),
        Interner::new(max_series),
        clock.clone(),
        metrics,
        Duration::from_secs(1),
        Box::new(move |lsn| saved2.lock().push(lsn)),
    );
    Rig {
        worker,
        registry,
        clock,
        saved,
        _dir: dir,
    }
}

fn rig(max_series: usize) -> Rig {
    rig_in(tempfile::tempdir().unwrap(), max_series)
}

impl Rig {
    fn feed(&mut self, lsn: u64, payload: Vec<u8>) {
        self.worker.process(&Record {
            payload,
            end_lsn: lsn,
        });
    }

    fn metrics(&self) -> String {
        encode_text(&self.registry).unwrap()
    }

    fn edges(&self) -> Vec<(String, String, u64, u64)> {
        let now = now_ns();
        self.worker
            .graph
            .window(now - 3_600_000_000_000, now)
            .into_iter()
            .map(|e| (e.parent.to_string(), e.child.to_string(), e.calls, e.errors))
            .collect()
    }
}

/// frontend (server 1 → client 2) → checkout (server 3 → client 4) → db (server 5),
/// each service exporting on its own, callee first for the second hop.
fn three_services(r: &mut Rig, trace: u8, lsn: u64) {
    r.feed(
        lsn,
        request(
            "frontend",
            trace,
            vec![s(1, 0, kind::SERVER, 120), s(2, 1, kind::CLIENT, 100)],
        ),
    );
    r.feed(
        lsn + 1,
        request(
            "db",
            trace,
            vec![S {
                error: true,
                ..s(5, 4, kind::SERVER, 20)
            }],
        ),
    );
    r.feed(
        lsn + 2,
        request(
            "checkout",
            trace,
            vec![s(3, 2, kind::SERVER, 90), s(4, 3, kind::CLIENT, 30)],
        ),
    );
}

#[test]
fn pairs_across_requests_into_graph_and_metrics() {
    let mut r = rig(100);
    three_services(&mut r, 1, 10);
    three_services(&mut r, 2, 20);
    assert_eq!(
        r.edges(),
        vec![
            ("checkout".into(), "db".into(), 2, 2),
            ("frontend".into(), "checkout".into(), 2, 0),
        ]
    );
    let text = r.metrics();
    for line in [
        r#"traces_service_graph_request_total{client="frontend",server="checkout",connection_type=""} 2"#,
        r#"traces_service_graph_request_failed_total{client="checkout",server="db",connection_type=""} 2"#,
        r#"traces_service_graph_request_client_seconds_bucket{client="frontend",server="checkout",connection_type="",le="0.1"} 2"#,
        r#"traces_service_graph_request_server_seconds_count{client="checkout",server="db",connection_type=""} 2"#,
        r#"traces_span_metrics_calls_total{service_name="db",span_name="op5",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"} 2"#,
        r#"traces_span_metrics_duration_milliseconds_bucket{service_name="frontend",span_name="op1",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",le="100"} 0"#,
        r#"traces_span_metrics_duration_milliseconds_bucket{service_name="frontend",span_name="op1",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",le="200"} 2"#,
        "# TYPE traces_span_metrics_duration_milliseconds histogram",
        "skein_derive_spans_total 10",
        "skein_derive_edges_total 4",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    let callers = r.worker.graph.callers("checkout", Duration::from_secs(600));
    assert_eq!(callers.len(), 1);
    assert_eq!(
        (callers[0].service.as_str(), callers[0].calls),
        ("frontend", 2)
    );
    assert!((callers[0].calls_per_minute - 0.2).abs() < 1e-9);
}

#[test]
fn uninstrumented_peer_appears_after_the_wait() {
    let mut r = rig(100);
    r.feed(
        1,
        request(
            "checkout",
            3,
            vec![S {
                attrs: vec![
                    kv("server.address", "payments.example"),
                    kv("peer.service", "payments"),
                ],
                ..s(1, 0, kind::CLIENT, 40)
            }],
        ),
    );
    r.worker.expire();
    assert!(r.edges().is_empty());
    r.clock.advance(Duration::from_secs(11));
    r.worker.expire();
    assert_eq!(
        r.edges(),
        vec![("checkout".into(), "payments".into(), 1, 0)]
    );
    assert!(r.metrics().contains(
        r#"traces_service_graph_request_total{client="checkout",server="payments",connection_type="virtual_node"} 1"#
    ));
}

#[test]
fn series_cap_counts_overflow() {
    let mut r = rig(2);
    r.feed(
        1,
        request(
            "a",
            4,
            vec![
                s(1, 0, kind::SERVER, 1),
                s(2, 0, kind::SERVER, 1),
                s(3, 0, kind::SERVER, 1),
            ],
        ),
    );
    let text = r.metrics();
    assert!(
        text.contains(r#"skein_derive_series_overflow_total{processor="span_metrics"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_derive_series{processor="span_metrics"} 2"#),
        "{text}"
    );
}

#[test]
fn saved_graph_survives_restart_and_replay_is_not_double_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let mut r = rig_in(dir, 100);
    three_services(&mut r, 1, 10);
    r.worker.save();
    assert_eq!(*r.saved.lock(), vec![12]);
    let before = r.edges();
    let Rig { _dir, .. } = r;

    let mut again = rig_in(_dir, 100);
    assert_eq!(again.edges(), before, "loaded from {}", path.display());
    // The WAL replays the same records (ids 10..=12) and one new trace.
    three_services(&mut again, 1, 10);
    three_services(&mut again, 2, 13);
    let edges = again.edges();
    assert_eq!(edges[0].2, 2, "{edges:?}");
    assert_eq!(edges[1].2, 2, "{edges:?}");
}
