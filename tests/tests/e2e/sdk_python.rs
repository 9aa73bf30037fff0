//! Python's `opentelemetry-sdk` with its OTLP exporters (gRPC and HTTP
//! protobuf) sends the 3-service chain and logs (`tests/python/send_chain.py`);
//! everything comes back through the Jaeger and logs APIs.

use skein_e2e::chain::{self, SentChain};
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
    let sent = SentChain {
        trace_id: out["trace_id"].as_str().expect("trace_id").to_string(),
        root: id(chain::ROOT),
        order: id(chain::ORDER),
        inventory: id(chain::INVENTORY),
        log_bodies: chain::log_bodies(&marker),
    };
    let printed: Vec<&str> = out["log_bodies"]
        .as_array()
        .expect("log_bodies")
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    assert_eq!(
        printed, sent.log_bodies,
        "the script logs the bodies chain::log_bodies describes"
    );
    sent
}

#[test]
fn python_sdk_over_grpc() {
    let collector = Collector::start_fast(&[]);
    let sent = send_chain("grpc", &collector.grpc_endpoint());
    chain::verify(&collector.api(), &sent);
}

#[test]
fn python_sdk_over_http_protobuf() {
    let collector = Collector::start_fast(&[]);
    let sent = send_chain("http", &collector.otlp_http_base());
    chain::verify(&collector.api(), &sent);
}
