//! `skein-collector --demo` (issue #8 item 6): on ephemeral ports, within
//! 60 s of start, the demo produces traces across its 4 services, the
//! dependency edges between them, logs carrying trace ids, alive registry
//! instances, and — in its failure cycle — an `InstanceStoppedRenewing`
//! alert for `payment` whose annotations name its caller `order`. Then
//! SIGTERM stops it cleanly (the agents deregister, no alert storm).

use std::time::{Duration, Instant};

use serde_json::Value;
use skein_e2e::alerts::AlertsApi;
use skein_e2e::{poll_until, Collector};

/// The acceptance window, measured from the process start.
const ACCEPTANCE: Duration = Duration::from_secs(60);

const SERVICES: [&str; 4] = ["frontend", "inventory", "order", "payment"];

fn left(started: Instant) -> Duration {
    ACCEPTANCE.saturating_sub(started.elapsed())
}

#[test]
fn demo_shows_traces_graph_logs_instances_and_a_liveness_alert_within_a_minute() {
    // Build first: the 60 s count from the process start, not the compile.
    skein_e2e::collector::collector_binary();
    let started = Instant::now();
    let mut collector = Collector::start(&["--demo"]);
    let api = collector.api();
    let base = collector.http_base();

    // The UI URL is printed on stdout.
    let ui = format!("Open the UI: {base}/");
    assert!(
        poll_until(left(started), || collector
            .log_lines()
            .iter()
            .any(|l| l.contains(&ui))),
        "no `{ui}` line printed"
    );

    // Traces from all four services.
    let mut services = Vec::new();
    let ok = poll_until(left(started), || {
        services = api.services();
        SERVICES.iter().all(|s| services.iter().any(|x| x == s))
    });
    assert!(
        ok,
        "/api/services after {:?}: {services:?}",
        started.elapsed()
    );

    // Dependency edges, Jaeger shape.
    let want = [
        ("frontend", "order"),
        ("order", "inventory"),
        ("order", "payment"),
    ];
    let mut edges: Vec<(String, String)> = Vec::new();
    let ok = poll_until(left(started), || {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis().to_string())
            .unwrap_or_default();
        let body = api.get_ok(
            "/api/dependencies",
            &[("endTs", &end), ("lookback", "3600000")],
        );
        edges = body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["parent"].as_str().unwrap_or("").to_string(),
                            e["child"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        want.iter()
            .all(|(p, c)| edges.iter().any(|(a, b)| a == p && b == c))
    });
    assert!(
        ok,
        "dependency edges after {:?}: {edges:?}",
        started.elapsed()
    );

    // Logs carrying trace ids, and the trace they point at spans services.
    let mut logs: Vec<Value> = Vec::new();
    let ok = poll_until(left(started), || {
        logs = api.logs(&[("service", "order"), ("limit", "20")]);
        logs.iter().any(|l| is_trace_id(&l["trace_id"]))
    });
    assert!(ok, "order logs with a trace id: {logs:?}");
    let correlated = logs
        .iter()
        .find(|l| is_trace_id(&l["trace_id"]))
        .and_then(|l| l["trace_id"].as_str())
        .expect("a log with a trace id")
        .to_string();
    // Each service's agent flushes on its own, so the trace fills in over
    // a moment: poll until the caller and the callee are both in it.
    api.wait_trace(&correlated, 3);
    let mut in_trace = std::collections::BTreeSet::new();
    let ok = poll_until(left(started), || {
        if let Some(trace) = api.trace(&correlated) {
            in_trace = trace.spans().iter().map(|s| trace.service_of(s)).collect();
        }
        in_trace.contains("frontend") && in_trace.contains("order")
    });
    assert!(ok, "trace {correlated} of an order log spans {in_trace:?}");

    // inventory's clock is 2.5 s behind: its trace shows the adjustment.
    let mut adjusted = Value::Null;
    let ok = poll_until(left(started), || {
        let logs = api.logs(&[("service", "inventory"), ("limit", "5")]);
        logs.iter()
            .filter_map(|l| l["trace_id"].as_str())
            .any(|id| {
                let (status, body) = api.get(&format!("/api/v1/traces/{id}"), &[]);
                adjusted = body["adjustments"].clone();
                status == 200 && adjusted.as_array().is_some_and(|a| !a.is_empty())
            })
    });
    assert!(
        ok,
        "no clock-skew adjustment in inventory's traces: {adjusted}"
    );

    // Alive instances, one per service.
    let mut registry = Value::Null;
    let ok = poll_until(left(started), || {
        registry = api.get_ok("/api/v1/registry/services", &[]);
        SERVICES.iter().all(|s| alive(&registry, s) >= 1)
    });
    assert!(ok, "alive instances: {registry}");

    // The failure cycle: payment stops renewing; the built-in liveness
    // alert fires with its caller, order, annotated.
    let alerts = AlertsApi::new(&base);
    let mut seen = Vec::new();
    let fired = poll_until(left(started), || {
        seen = alerts.alerts();
        seen.iter().any(|a| {
            a["name"] == "InstanceStoppedRenewing"
                && a["labels"]["service"] == "payment"
                && a["state"] == "firing"
                && a["annotations"]["callers"]
                    .as_str()
                    .is_some_and(|c| c.contains("order"))
        })
    });
    assert!(
        fired,
        "no firing InstanceStoppedRenewing for payment with callers=order within {ACCEPTANCE:?}: {seen:?}"
    );
    let elapsed = started.elapsed();
    eprintln!("acceptance met after {elapsed:?}");

    // SIGTERM: a clean exit within the contract's time.
    let (status, took) = collector.terminate();
    assert!(status.success(), "exit status {status} after {took:?}");
}

fn is_trace_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()) && s != "0".repeat(32)
    })
}

/// The `alive` count of `service` in `/api/v1/registry/services`.
fn alive(body: &Value, service: &str) -> u64 {
    body["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["service"] == service))
        .and_then(|s| s["alive"].as_u64())
        .unwrap_or(0)
}

/// `--demo --demo-collector URL` (what the compose `demo` service runs):
/// the demo alone, through its in-process agents, into a collector started
/// separately; on SIGTERM its agents deregister (no alert).
#[test]
fn demo_only_sends_to_a_separate_collector_and_deregisters_on_sigterm() {
    let collector = Collector::start_fast(&[]);
    let api = collector.api();
    let mut demo =
        skein_e2e::demo::DemoOnly::start(&collector.http_base(), &collector.grpc_endpoint());
    let mut services = Vec::new();
    let ok = poll_until(Duration::from_secs(40), || {
        services = api.services();
        SERVICES.iter().all(|s| services.iter().any(|x| x == s))
    });
    assert!(ok, "/api/services: {services:?}");
    let mut registry = Value::Null;
    let ok = poll_until(Duration::from_secs(20), || {
        registry = api.get_ok("/api/v1/registry/services", &[]);
        SERVICES.iter().all(|s| alive(&registry, s) >= 1)
    });
    assert!(ok, "alive instances: {registry}");

    let status = demo.terminate();
    assert!(status.success(), "demo exit status {status}");
    let ok = poll_until(Duration::from_secs(10), || {
        registry = api.get_ok("/api/v1/registry/services", &[]);
        SERVICES.iter().all(|s| alive(&registry, s) == 0)
    });
    assert!(
        ok,
        "instances still alive after the demo stopped: {registry}"
    );
    let alerts = AlertsApi::new(&collector.http_base()).alerts();
    assert!(
        alerts
            .iter()
            .all(|a| a["name"] != "InstanceStoppedRenewing"),
        "graceful deregistration must not alert: {alerts:?}"
    );
}
