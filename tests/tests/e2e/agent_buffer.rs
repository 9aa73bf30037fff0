//! The agent's disk buffer with real processes: a collector outage loses
//! nothing, a full buffer answers 503 + Retry-After and keeps everything it
//! acknowledged, and SIGKILL of the agent loses no acknowledged span.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skein_e2e::agent::Agent;
use skein_e2e::otlp::{self, GrpcClient};
use skein_e2e::{poll_until, wait_until, Api, Collector};

/// One log request with body `"<marker> <seq>"`.
fn log_request(
    marker: &str,
    seq: usize,
    pad: usize,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    let mut rec = otlp::log_record(&format!("{marker} {seq} {}", "x".repeat(pad)));
    rec.time_unix_nano = otlp::now_ns();
    otlp::logs("agent-buffer-test", vec![rec])
}

/// Seqs of the logs whose body carries `marker`.
fn seqs(api: &Api, marker: &str) -> Vec<usize> {
    api.logs(&[("query", marker), ("limit", "5000")])
        .iter()
        .filter_map(|l| l["body"].as_str()?.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn wait_for_seqs(api: &Api, marker: &str, want: &BTreeSet<usize>) {
    let mut got = Vec::new();
    let ok = poll_until(Duration::from_secs(60), || {
        got = seqs(api, marker);
        got.len() >= want.len()
    });
    let set: BTreeSet<usize> = got.iter().copied().collect();
    let missing: Vec<_> = want.difference(&set).collect();
    assert!(
        ok && missing.is_empty(),
        "missing {} of {}: {missing:?}",
        missing.len(),
        want.len()
    );
    assert_eq!(got.len(), set.len(), "no record arrived twice");
}

#[test]
fn collector_outage_of_10s_loses_nothing() {
    let mut collector = Collector::start_fast(&[]);
    let agent = Agent::builder(&collector).start();
    let marker = skein_e2e::chain::marker();
    let mut client = GrpcClient::new(&agent.grpc_endpoint());
    let mut sent = BTreeSet::new();
    let mut seq = 0;
    let mut send_for = |client: &mut GrpcClient, d: Duration, sent: &mut BTreeSet<usize>| {
        let until = Instant::now() + d;
        while Instant::now() < until {
            client
                .export_logs(log_request(&marker, seq, 0))
                .expect("the agent acknowledges while it has room");
            sent.insert(seq);
            seq += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    send_for(&mut client, Duration::from_secs(1), &mut sent);
    collector.terminate();
    send_for(&mut client, Duration::from_secs(10), &mut sent);
    let status = agent.status();
    assert_eq!(status["collector"]["reachable"], false, "{status}");
    assert!(
        status["buffer"]["used_bytes"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    assert!(agent.metric("skein_agent_retried_total{signal=\"logs\"}") > 0.0);
    collector.restart_same_ports();
    send_for(&mut client, Duration::from_secs(1), &mut sent);
    wait_for_seqs(&collector.api(), &marker, &sent);
    wait_until(Duration::from_secs(10), "the buffer drains", || {
        agent.status()["buffer"]["used_bytes"] == 0
    });
}

#[test]
fn full_buffer_answers_503_with_retry_after_and_keeps_what_it_acknowledged() {
    let mut collector = Collector::start_fast(&[]);
    collector.terminate(); // its ports are known; nothing listens for now
    let agent = Agent::builder(&collector)
        .args(&["--buffer-max-bytes", "16KiB"])
        .start();
    let marker = skein_e2e::chain::marker();
    let url = format!("{}/v1/logs", agent.otlp_http_base());
    let mut acked = BTreeSet::new();
    let mut refused = None;
    for seq in 0..100 {
        let body = prost::Message::encode_to_vec(&log_request(&marker, seq, 900));
        let reply = otlp::post(&url, "application/x-protobuf", None, body);
        match reply.status {
            200 => {
                acked.insert(seq);
            }
            503 => {
                refused = Some(reply);
                break;
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    let refused = refused.expect("a 16 KiB buffer fills up");
    assert!(acked.len() >= 5, "some requests fit: {}", acked.len());
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    // gRPC apps get UNAVAILABLE with a retry hint.
    let mut client = GrpcClient::new(&agent.grpc_endpoint());
    let err = client
        .export_logs(log_request(&marker, 1000, 900))
        .expect_err("full");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.metadata().get("retry-after").is_some());
    assert_eq!(agent.admin_status("/readyz"), 503, "not ready while full");
    assert!(agent.metric("skein_agent_buffer_full_total") >= 2.0);

    collector.restart_same_ports();
    wait_for_seqs(&collector.api(), &marker, &acked);
    wait_until(Duration::from_secs(10), "ready again once drained", || {
        agent.admin_status("/readyz") == 200
    });
}

#[test]
fn sigkill_of_the_agent_loses_no_acknowledged_span() {
    let collector = Collector::start_fast(&[]);
    let mut agent = Agent::builder(&collector).start();
    let endpoint = agent.grpc_endpoint();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client = GrpcClient::new(&endpoint);
            while !stop.load(Ordering::Relaxed) {
                let tid = otlp::new_trace_id();
                let spans = (0..5)
                    .map(|i| {
                        let mut s = otlp::span(&tid, &otlp::new_span_id(), &format!("op{i}"));
                        s.end_time_unix_nano = s.start_time_unix_nano + 1000;
                        s
                    })
                    .collect();
                if client
                    .export_traces(otlp::traces("kill9-test", spans))
                    .is_ok()
                {
                    acked.lock().unwrap().push(otlp::hex(&tid));
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    wait_until(Duration::from_secs(30), "50 acknowledged traces", || {
        acked.lock().unwrap().len() >= 50
    });
    agent.kill9();
    let before = acked.lock().unwrap().len();
    agent.restart_same_ports();
    wait_until(
        Duration::from_secs(30),
        "more acknowledged after the restart",
        || acked.lock().unwrap().len() >= before + 20,
    );
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender thread");
    let api = collector.api();
    let ids = acked.lock().unwrap().clone();
    for id in &ids {
        let t = api.wait_trace(id, 5);
        // A batch sent right before the kill may be sent again (at least
        // once); every span is there.
        let distinct: BTreeSet<String> = t.spans().iter().map(|s| s.id().to_string()).collect();
        assert_eq!(distinct.len(), 5, "trace {id}");
    }
}
