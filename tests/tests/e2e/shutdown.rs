//! Graceful shutdown: SIGTERM → exit 0 within 10 s, idle or right after
//! data was sent, and nothing acknowledged is lost across the restart.

use skein_e2e::collector::TERM_TIMEOUT;
use skein_e2e::otlp::{self, hex, new_span_id, new_trace_id, GrpcClient};
use skein_e2e::stream::Streamer;
use skein_e2e::{wait_until, Collector};

#[test]
fn sigterm_when_idle_exits_zero() {
    let mut c = Collector::start(&[]);
    let (status, took) = c.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took < TERM_TIMEOUT, "took {took:?}");
}

#[test]
fn sigterm_right_after_sending_exits_zero_and_keeps_the_data() {
    let mut c = Collector::start(&[]);
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let (a, b) = (new_trace_id(), new_trace_id());
    let (sa, sb) = (new_span_id(), new_span_id());
    grpc.export_traces(otlp::traces("term", vec![otlp::span(&a, &sa, "via-grpc")]))
        .expect("acked");
    grpc.export_logs(otlp::logs(
        "term",
        vec![otlp::log_in_span(&a, &sa, "logged over grpc")],
    ))
    .expect("acked");
    otlp::export_traces_http(
        &c.otlp_http_base(),
        &otlp::traces("term", vec![otlp::span(&b, &sb, "via-http")]),
    );
    otlp::export_logs_http(
        &c.otlp_http_base(),
        &otlp::logs("term", vec![otlp::log_in_span(&b, &sb, "logged over http")]),
    );

    let (status, took) = c.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took < TERM_TIMEOUT, "took {took:?}");

    c.restart();
    let api = c.api();
    for (id, op) in [(&a, "via-grpc"), (&b, "via-http")] {
        let trace = api.wait_trace(&hex(id), 1);
        trace.span(op);
        api.wait_logs(&[("trace_id", &hex(id))], 1);
    }
}

#[test]
fn sigterm_mid_stream_exits_zero_and_keeps_every_ack() {
    let mut c = Collector::start(&[]);
    let streamer = Streamer::start(&c.grpc_endpoint(), 2);
    wait_until(
        std::time::Duration::from_secs(60),
        "100 acknowledged traces",
        || streamer.acked_traces() >= 100,
    );
    let (status, took) = c.terminate();
    let acked = streamer.stop();
    assert!(status.success(), "exit status {status}");
    assert!(took < TERM_TIMEOUT, "took {took:?}");

    c.restart();
    acked.assert_queryable(&c.api());
}
