//! Dependency graph and service-graph metrics from spans sent with the real
//! Rust OpenTelemetry SDK (three services, each exporting on its own):
//! `/api/dependencies`, `/api/v1/dependencies` and
//! `traces_service_graph_request_total` all agree with the calls sent, and
//! the graph survives a restart.

use std::collections::BTreeMap;

use serde_json::Value;
use skein_e2e::calls::{sample, send_calls, Sent};
use skein_e2e::{wait_for, Api, Collector, QUERYABLE_WITHIN};

fn jaeger_links(api: &Api) -> BTreeMap<(String, String), u64> {
    let (status, body) = api.get("/api/dependencies", &[]);
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .map(|l| {
                    (
                        (
                            l["parent"].as_str().unwrap_or_default().to_string(),
                            l["child"].as_str().unwrap_or_default().to_string(),
                        ),
                        l["callCount"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn wait_links(api: &Api, sent: &Sent) {
    wait_for(
        QUERYABLE_WITHIN,
        "/api/dependencies to match the calls sent",
        || (jaeger_links(api) == sent.calls).then_some(()),
    );
}

#[test]
fn dependencies_and_service_graph_agree_with_calls_sent() {
    let mut collector = Collector::start_fast(&[]);
    let sent = send_calls(&collector, 12, 4);
    assert_eq!(sent.failed.values().sum::<u64>(), 3);
    let api = collector.api();
    wait_links(&api, &sent);

    // Tempo's service-graph counters say the same.
    let metrics = api.metrics();
    for ((client, server), calls) in &sent.calls {
        let labels = format!(r#"client="{client}",server="{server}",connection_type="""#);
        assert_eq!(
            sample(&metrics, "traces_service_graph_request_total", &labels),
            Some(*calls as f64),
            "{labels}\n{metrics}"
        );
        let failed = sent
            .failed
            .get(&(client.clone(), server.clone()))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            sample(
                &metrics,
                "traces_service_graph_request_failed_total",
                &labels
            ),
            Some(failed as f64),
            "{labels}"
        );
        assert_eq!(
            sample(
                &metrics,
                "traces_service_graph_request_client_seconds_count",
                &labels
            ),
            Some(*calls as f64)
        );
        assert_eq!(
            sample(
                &metrics,
                "traces_service_graph_request_server_seconds_count",
                &labels
            ),
            Some(*calls as f64)
        );
    }
    // Span metrics: one series per service/span/kind/status, counting every span.
    let spans_of = |service: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("traces_span_metrics_calls_total{"))
            .filter(|l| l.contains(&format!(r#"service_name="{service}""#)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for (service, n) in &sent.spans {
        assert_eq!(spans_of(service), *n as f64, "{service}");
    }
    assert_eq!(
        sample(
            &metrics,
            "traces_span_metrics_calls_total",
            r#"service_name="payments",span_name="charge",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR""#
        ),
        Some(3.0)
    );

    // The native API adds errors and latency per edge.
    let (status, body) = api.get("/api/v1/dependencies", &[]);
    assert_eq!(status, 200, "{body}");
    let edges = body["edges"].as_array().cloned().unwrap_or_default();
    assert_eq!(edges.len(), 2, "{body}");
    let edge = |p: &str, c: &str| -> Value {
        edges
            .iter()
            .find(|e| e["parent"] == p && e["child"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("no edge {p} → {c} in {body}"))
    };
    let pay = edge("checkout", "payments");
    assert_eq!(pay["call_count"], 12);
    assert_eq!(pay["error_count"], 3);
    assert!(pay["latency_p50_ms"].as_f64().is_some() && pay["latency_p99_ms"].as_f64().is_some());
    assert_eq!(edge("web", "checkout")["error_count"], 0);

    // Bad input is a precise 400.
    let (status, body) = api.get("/api/dependencies", &[("endTs", "tomorrow")]);
    assert_eq!(status, 400, "{body}");

    // The graph is persisted in the data dir: a restart keeps it, and the
    // WAL replay does not count a call twice.
    collector.terminate();
    collector.restart();
    let api = collector.api();
    wait_links(&api, &sent);
    let sent_more = send_calls(&collector, 2, 0);
    let mut total = sent.calls.clone();
    for (k, v) in sent_more.calls {
        *total.entry(k).or_default() += v;
    }
    wait_for(
        QUERYABLE_WITHIN,
        "the graph to add the calls after the restart",
        || (jaeger_links(&api) == total).then_some(()),
    );
}

#[test]
fn crash_after_ack_loses_no_call() {
    let mut collector = Collector::start_fast(&[]);
    let sent = send_calls(&collector, 5, 0);
    collector.kill9();
    collector.restart();
    // Replayed from the WAL (or loaded from the saved hour), counted once.
    wait_links(&collector.api(), &sent);
}
