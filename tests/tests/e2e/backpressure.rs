//! Backpressure: with the indexer paused the WAL backlog grows past
//! `--max-wal-backlog`; ingest then answers 503 + `Retry-After` (HTTP) and
//! UNAVAILABLE (gRPC). After resuming, retried batches are accepted and every
//! accepted batch is queryable.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use skein_e2e::otlp::{self, hex, new_span_id, new_trace_id, GrpcClient};
use skein_e2e::{poll_until, Collector};
use tonic::Code;

/// A batch of 8 spans with 1 KiB of attributes each (about 9 KiB).
fn batch() -> (String, ExportTraceServiceRequest) {
    let trace_id = new_trace_id();
    let spans = (0..8)
        .map(|i| {
            let mut s = otlp::span(&trace_id, &new_span_id(), &format!("op-{i}"));
            s.attributes
                .push(otlp::str_attr("padding", &"p".repeat(1024)));
            s
        })
        .collect();
    (hex(&trace_id), otlp::traces("pressured", spans))
}

#[test]
fn backlog_over_limit_is_refused_with_retry_hint_and_recovers() {
    let c = Collector::start_fast(&["--max-wal-backlog", "64KiB", "--debug-endpoints"]);
    let api = c.api();
    assert_eq!(api.post("/debug/indexer/pause"), 200, "pausing the indexer");

    // HTTP until the first 503.
    let mut accepted = Vec::new();
    let mut refused_http = None;
    for _ in 0..1000 {
        let (id, req) = batch();
        let reply = otlp::post_traces(&c.otlp_http_base(), &req);
        match reply.status {
            200 => accepted.push(id),
            503 => {
                let retry_after = reply
                    .header("retry-after")
                    .unwrap_or_else(|| panic!("503 without Retry-After"));
                let secs: u64 = retry_after
                    .parse()
                    .unwrap_or_else(|_| panic!("Retry-After '{retry_after}' in seconds"));
                assert!(secs >= 1, "Retry-After {secs}");
                refused_http = Some((id, req));
                break;
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    let refused_http =
        refused_http.expect("a 503 within 1000 batches (~9 MB) over a 64 KiB backlog limit");
    assert!(
        !accepted.is_empty(),
        "batches under the limit were accepted first"
    );
    eprintln!("accepted {} batches before the first 503", accepted.len());

    // gRPC is refused too while the backlog stays over the limit.
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let (grpc_id, grpc_req) = batch();
    let err = grpc
        .export_traces(grpc_req.clone())
        .expect_err("UNAVAILABLE while over the backlog limit");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    assert_eq!(
        api.post("/debug/indexer/resume"),
        200,
        "resuming the indexer"
    );

    // Retry the refused batches as an exporter would, until acknowledged.
    let mut retry_http = || otlp::post_traces(&c.otlp_http_base(), &refused_http.1).status == 200;
    assert!(
        poll_until(Duration::from_secs(30), &mut retry_http),
        "HTTP retry accepted after resume"
    );
    accepted.push(refused_http.0.clone());
    let mut retry_grpc = || grpc.export_traces(grpc_req.clone()).is_ok();
    assert!(
        poll_until(Duration::from_secs(30), &mut retry_grpc),
        "gRPC retry accepted after resume"
    );
    accepted.push(grpc_id);

    let mut missing = accepted.clone();
    poll_until(skein_e2e::QUERYABLE_WITHIN, || {
        missing.retain(|id| api.trace(id).is_none_or(|t| t.spans().len() < 8));
        missing.is_empty()
    });
    assert!(
        missing.is_empty(),
        "accepted but not queryable: {} of {}: {missing:?}",
        missing.len(),
        accepted.len()
    );
}
