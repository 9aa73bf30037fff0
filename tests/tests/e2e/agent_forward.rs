//! An app → `skein-agent` → `skein-collector`, all real processes: Python's
//! `opentelemetry-sdk` exports to the agent, the collector shows the spans
//! and logs with the agent's resource attributes added; bad input gets the
//! same answers from the agent as from the collector.

use serde_json::Value;
use skein_e2e::agent::Agent;
use skein_e2e::chain::{self, SentChain};
use skein_e2e::otlp::{self, post};
use skein_e2e::python::run_script;
use skein_e2e::Collector;

fn send_chain(protocol: &str, endpoint: &str) -> SentChain {
    let marker = chain::marker();
    let out = run_script(
        "send_chain.py",
        &[
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--marker",
            &marker,
        ],
    );
    let id = |op: &str| {
        out["span_ids"][op]
            .as_str()
            .unwrap_or_else(|| panic!("no span id for {op}: {out}"))
            .to_string()
    };
    SentChain {
        trace_id: out["trace_id"].as_str().expect("trace_id").to_string(),
        root: id(chain::ROOT),
        order: id(chain::ORDER),
        inventory: id(chain::INVENTORY),
        log_bodies: chain::log_bodies(&marker),
    }
}

/// `processes[*].tags` of a Jaeger trace as key → value.
fn process_tags(trace: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(procs) = trace["processes"].as_object() {
        for p in procs.values() {
            for t in p["tags"].as_array().into_iter().flatten() {
                out.push((
                    t["key"].as_str().unwrap_or("").to_string(),
                    t["value"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| t["value"].to_string()),
                ));
            }
        }
    }
    out
}

/// `compression`: how the agent exports to the collector.
fn python_app_through_the_agent(protocol: &str, compression: &str) {
    let collector = Collector::start_fast(&[]);
    let agent = Agent::builder(&collector)
        .arg(format!("--compression={compression}"))
        .env("K8S_POD_NAME", "checkout-7d9f")
        .env("K8S_NAMESPACE_NAME", "shop")
        .start();
    let endpoint = match protocol {
        "grpc" => agent.grpc_endpoint(),
        _ => agent.otlp_http_base(),
    };
    let sent = send_chain(protocol, &endpoint);
    chain::verify(&collector.api(), &sent);

    let trace = collector.api().wait_trace(&sent.trace_id, 3);
    let tags = process_tags(&trace.0);
    let has = |k: &str, v: Option<&str>| {
        tags.iter()
            .any(|(tk, tv)| tk == k && v.is_none_or(|v| v == tv))
    };
    assert!(has("host.name", None), "host.name added: {tags:?}");
    assert!(
        has("service.instance.id", None),
        "service.instance.id added: {tags:?}"
    );
    assert!(
        has("k8s.pod.name", Some("checkout-7d9f")),
        "k8s.pod.name from the env: {tags:?}"
    );
    assert!(has("k8s.namespace.name", Some("shop")), "{tags:?}");
    // The agent counted what it received and what the collector acknowledged.
    assert!(agent.metric("skein_agent_sent_total{signal=\"traces\"}") >= 3.0);
    assert!(agent.metric("skein_agent_sent_total{signal=\"logs\"}") >= 2.0);
    let status = agent.status();
    assert_eq!(status["collector"]["reachable"], true, "{status}");
}

#[test]
fn python_sdk_over_grpc_through_the_agent() {
    python_app_through_the_agent("grpc", "gzip");
}

#[test]
fn python_sdk_over_http_through_the_agent_exporting_zstd() {
    python_app_through_the_agent("http", "zstd");
}

#[test]
fn bad_input_gets_the_collectors_answers() {
    let collector = Collector::start_fast(&[]);
    let agent = Agent::builder(&collector).start();
    let tid = otlp::new_trace_id();
    let mut good = otlp::span(&tid, &otlp::new_span_id(), "ok");
    good.end_time_unix_nano = good.start_time_unix_nano + 1000;
    let mut bad = otlp::span(&[0u8; 3], &otlp::new_span_id(), "bad id");
    bad.end_time_unix_nano = bad.start_time_unix_nano + 1000;
    let partial = prost::Message::encode_to_vec(&otlp::traces("svc", vec![good, bad]));
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("text/plain", None, b"hello".to_vec()),
        ("application/json", None, b"{\"resourceSpans\":[".to_vec()),
        ("application/x-protobuf", None, vec![0xff, 0xff, 0xff]),
        ("application/x-protobuf", Some("br"), partial.clone()),
        ("application/x-protobuf", Some("gzip"), b"not gzip".to_vec()),
        ("application/x-protobuf", None, partial),
    ];
    for (ct, enc, body) in cases {
        let from_collector = post(
            &format!("{}/v1/traces", collector.otlp_http_base()),
            ct,
            enc,
            body.clone(),
        );
        let from_agent = post(
            &format!("{}/v1/traces", agent.otlp_http_base()),
            ct,
            enc,
            body,
        );
        assert_eq!(
            from_agent.status,
            from_collector.status,
            "{ct} {enc:?}: {}",
            from_agent.text()
        );
        assert_eq!(
            from_agent.body, from_collector.body,
            "{ct} {enc:?}: same error body"
        );
    }
}
