//! A real Prometheus (Debian package `prometheus`) scrapes the collector's
//! `/metrics` and can query the span RED metrics by `service_name` and the
//! service graph by `client`/`server`, after spans were sent with the Rust
//! OpenTelemetry SDK.

use std::collections::BTreeMap;
use std::time::Duration;

use skein_e2e::calls::send_calls;
use skein_e2e::prometheus::Prometheus;
use skein_e2e::{wait_for, Collector};

/// Scrapes every 500 ms, so data shows up within a second or two; the
/// deadline is generous for a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(60);

#[test]
fn prometheus_queries_span_metrics_by_service_name() {
    let collector = Collector::start_fast(&[]);
    let target = collector
        .http_base()
        .trim_start_matches("http://")
        .to_string();
    let prom = Prometheus::start(&target, Duration::from_millis(500));
    let sent = send_calls(&collector, 6, 3);

    let expected: BTreeMap<String, f64> = sent
        .spans
        .iter()
        .map(|(s, n)| (s.clone(), *n as f64))
        .collect();
    wait_for(
        WITHIN,
        "Prometheus to return span counts by service_name",
        || {
            let rows = prom.query("sum by (service_name) (traces_span_metrics_calls_total)");
            let got: BTreeMap<String, f64> = rows
                .iter()
                .filter_map(|r| {
                    let service = r["metric"]["service_name"].as_str()?.to_string();
                    let value = r["value"][1].as_str()?.parse().ok()?;
                    Some((service, value))
                })
                .collect();
            (got == expected).then_some(())
        },
    );

    let errors = prom.query(
        r#"sum(traces_span_metrics_calls_total{service_name="payments",status_code="STATUS_CODE_ERROR"})"#,
    );
    assert_eq!(errors[0]["value"][1], "2", "{errors:?}");
    let p = prom.query(
        r#"histogram_quantile(0.5, sum by (le) (traces_span_metrics_duration_milliseconds_bucket{service_name="web"}))"#,
    );
    assert!(
        p[0]["value"][1]
            .as_str()
            .is_some_and(|v| v.parse::<f64>().is_ok()),
        "{p:?}"
    );
    wait_for(
        WITHIN,
        "Prometheus to return the service-graph edge",
        || {
            let graph =
                prom.query(r#"traces_service_graph_request_total{client="web",server="checkout"}"#);
            (graph.first().map(|g| g["value"][1].clone()) == Some("6".into())).then_some(())
        },
    );
}
