//! Grafana's Loki data source against the real collector: logs sent with the
//! Rust OpenTelemetry SDK's OTLP logs exporter come back through requests
//! shaped like the plugin's (health check, Explore's log query and volume
//! query, categorize-labels, label browser, traces→logs custom query), read
//! from the tantivy store (pushdown, fast-field counts, term dictionaries).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{LogExporter, Protocol, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;
use skein_e2e::{wait_for, Collector, QUERYABLE_WITHIN};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const SPAN: &str = "eee19b7ec3c1b174";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Four records from `checkout` (one with a trace context) and one from `billing`.
fn send_logs(collector: &Collector) {
    let exporter = LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/logs", collector.otlp_http_base()))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP log exporter");
    let provider = |service: &'static str, exporter: LogExporter| {
        SdkLoggerProvider::builder()
            .with_resource(
                Resource::builder()
                    .with_service_name(service)
                    .with_attribute(KeyValue::new("deployment.environment", "e2e"))
                    .build(),
            )
            .with_batch_exporter(exporter)
            .build()
    };
    let checkout = provider("checkout", exporter);
    let logger = checkout.logger("loki-e2e");
    let ctx = SpanContext::new(
        TraceId::from_hex(TRACE).expect("trace id"),
        SpanId::from_hex(SPAN).expect("span id"),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let lines: [(&str, Severity, bool); 4] = [
        ("order placed id=17", Severity::Info, false),
        (
            r#"{"status":500,"msg":"payment declined"}"#,
            Severity::Error,
            true,
        ),
        (
            "level=warn msg=\"slow inventory\" ms=900",
            Severity::Warn,
            false,
        ),
        ("cache warm", Severity::Debug, false),
    ];
    for (body, severity, traced) in lines {
        let mut record = logger.create_log_record();
        record.set_timestamp(SystemTime::now());
        record.set_severity_number(severity);
        record.set_body(AnyValue::String(body.to_string().into()));
        record.add_attribute("thread.name", "main");
        if traced {
            record.set_trace_context(ctx.trace_id(), ctx.span_id(), Some(ctx.trace_flags()));
        }
        logger.emit(record);
    }
    checkout.force_flush().expect("flushing logs");
    checkout.shutdown().expect("shutdown");

    let exporter = LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/logs", collector.otlp_http_base()))
        .build()
        .expect("HTTP log exporter");
    let billing = provider("billing", exporter);
    let mut record = billing.logger("loki-e2e").create_log_record();
    record.set_timestamp(SystemTime::now());
    record.set_severity_number(Severity::Info);
    record.set_body(AnyValue::String("invoice sent".into()));
    billing.logger("loki-e2e").emit(record);
    billing.force_flush().expect("flushing logs");
    billing.shutdown().expect("shutdown");
}

struct Loki {
    base: String,
    client: reqwest::blocking::Client,
}

impl Loki {
    fn get(&self, path: &str, query: &[(&str, &str)], categorize: bool) -> (u16, String) {
        let mut req = self
            .client
            .get(format!("{}/loki/api/v1/{path}", self.base))
            .query(query);
        if categorize {
            req = req.header("X-Loki-Response-Encoding-Flags", "categorize-labels");
        }
        let resp = req.send().expect("loki request");
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    }

    fn ok(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(path, query, false);
        assert_eq!(status, 200, "{path} {query:?}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }
}

fn entries(v: &Value) -> usize {
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn grafana_loki_datasource_requests() {
    let collector = Collector::start_fast(&[]);
    let t0 = now_ns() - 60_000_000_000;
    send_logs(&collector);
    let loki = Loki {
        base: collector.http_base(),
        client: skein_e2e::http_client().build().expect("http client"),
    };
    let start = t0.to_string();
    let end = (now_ns() + 60_000_000_000).to_string();
    let window = |q: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("query", q.to_string()),
            ("start", start.clone()),
            ("end", end.clone()),
        ]
    };
    let pairs = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    fn q<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(k, s)| (*k, s.as_str())).collect()
    }

    // Explore's log query: backward, limit, ns times
    let all = window(r#"{service_name=~"checkout|billing"}"#);
    let mut params = pairs(&all);
    params.push(("limit", "1000".into()));
    params.push(("direction", "backward".into()));
    let v = wait_for(QUERYABLE_WITHIN, "5 log lines via Loki", || {
        let v = loki.ok("query_range", &q(&params));
        (entries(&v) == 5).then_some(v)
    });
    assert_eq!(v["data"]["resultType"], "streams");
    let first = &v["data"]["result"][0]["values"][0];
    assert!(
        first[0].as_str().unwrap().parse::<u64>().unwrap() > t0,
        "ns string"
    );

    // health check
    let v = loki.ok("query", &[("query", "vector(1)+vector(1)"), ("time", &end)]);
    assert_eq!(v["data"]["result"][0]["value"][1], "2");

    // forward + limit
    let mut params = window(r#"{service_name="checkout"}"#);
    params.push(("limit", "1".into()));
    params.push(("direction", "forward".into()));
    let v = loki.ok("query_range", &q(&params));
    assert_eq!(v["data"]["result"][0]["values"][0][1], "order placed id=17");

    // categorize-labels + the traces→logs custom query (label filter on trace_id)
    let tq = format!(r#"{{service_name="checkout"}} | trace_id="{TRACE}""#);
    let (status, body) = loki.get(
        "query_range",
        &[
            ("query", &tq),
            ("start", &start),
            ("end", &end),
            ("limit", "100"),
        ],
        true,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.find("encodingFlags").unwrap() < body.find("\"result\"").unwrap());
    let v: Value = serde_json::from_str(&body).unwrap();
    let values = v["data"]["result"][0]["values"].as_array().unwrap().clone();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0][2]["structuredMetadata"]["trace_id"], TRACE);
    assert_eq!(values[0][2]["structuredMetadata"]["span_id"], SPAN);
    assert_eq!(
        v["data"]["result"][0]["stream"]["deployment_environment"],
        "e2e"
    );

    // Explore's volume query (fast-field counts)
    let mut params = window(
        r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} | drop __error__[1m]))"#,
    );
    params.push(("step", "60".into()));
    let v = loki.ok("query_range", &q(&params));
    assert_eq!(v["data"]["resultType"], "matrix");
    let mut levels: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["level"].as_str().unwrap().to_string())
        .collect();
    levels.sort();
    assert_eq!(levels, ["debug", "error", "info", "warn"]);

    // dashboard metrics: rate by service (fast), json + label filter (scan)
    let v = loki.ok(
        "query",
        &[
            (
                "query",
                r#"sum by (service_name) (count_over_time({deployment_environment="e2e"}[10m]))"#,
            ),
            ("time", &end),
        ],
    );
    let mut counts: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["service_name"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("billing".to_string(), "1".to_string()),
            ("checkout".into(), "4".into())
        ]
    );
    let v = loki.ok(
        "query",
        &[
            ("query", r#"sum(count_over_time({service_name="checkout"} |= "status" | json | status >= 500 [10m]))"#),
            ("time", &end),
        ],
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "1");

    // label browser
    let w = [("start", start.as_str()), ("end", end.as_str())];
    let v = loki.ok("labels", &w);
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "service_name",
        "level",
        "deployment_environment",
        "thread_name",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let v = loki.ok("label/service_name/values", &w);
    assert_eq!(v["data"], serde_json::json!(["billing", "checkout"]));
    let v = loki.ok(
        "label/level/values",
        &[
            ("start", &start),
            ("end", &end),
            ("query", r#"{service_name="billing"}"#),
        ],
    );
    assert_eq!(v["data"], serde_json::json!(["info"]));
    let v = loki.ok(
        "series",
        &[
            ("start", &start),
            ("end", &end),
            ("match[]", r#"{service_name="billing"}"#),
        ],
    );
    // One stream: service_name, level and every scalar resource attribute
    // (the Rust SDK adds telemetry.sdk.*; the version is left unchecked).
    let series = v["data"].as_array().expect("series is an array");
    assert_eq!(series.len(), 1, "{series:?}");
    let mut labels = series[0].as_object().expect("a label map").clone();
    assert!(
        labels.remove("telemetry_sdk_version").is_some(),
        "{labels:?}"
    );
    assert_eq!(
        serde_json::Value::Object(labels),
        serde_json::json!({"deployment_environment":"e2e","level":"info","service_name":"billing",
            "telemetry_sdk_language":"rust","telemetry_sdk_name":"opentelemetry"})
    );
    let v = loki.ok(
        "index/stats",
        &[
            ("start", &start),
            ("end", &end),
            ("query", r#"{service_name="checkout"}"#),
        ],
    );
    assert_eq!(v["entries"], 4);
    assert_eq!(v["streams"], 4);
    assert!(v["bytes"].as_u64().unwrap() > 40);

    // unsupported LogQL: 400 in Loki's error shape naming it
    let (status, body) = loki.get(
        "query_range",
        &[(
            "query",
            r#"{service_name="checkout"} | line_format "{{.msg}}""#,
        )],
        false,
    );
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error");
    assert!(v["error"].as_str().unwrap().contains("line_format"));
}
