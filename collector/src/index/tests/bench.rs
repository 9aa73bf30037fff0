//! Indexing throughput on this machine (not a unit test):
//! `cargo test --release -p skein-collector --lib index::tests::bench -- --ignored --nocapture`

use std::time::Instant;

use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::*;

/// A request of `n` ~217-byte spans with 5 attributes, like the design's reference.
fn request(batch: u32, n: u32) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| {
            let k = batch * n + i;
            let mut sp = span(
                (k % 251) as u8,
                (k % 60_000) as u16,
                "GET /api/orders",
                1,
                3,
            );
            sp.trace_id[1..5].copy_from_slice(&(k / 8).to_be_bytes());
            sp.span_id[..4].copy_from_slice(&k.to_be_bytes());
            sp.parent_span_id = sid((k % 7) as u16);
            sp.attributes = vec![
                kv("http.method", s("GET")),
                kv("http.status_code", Value::IntValue(200 + i64::from(k % 3))),
                kv("http.route", s("/api/orders/{id}")),
                kv("net.peer.ip", s("10.1.2.3")),
                kv("user.id", Value::IntValue(i64::from(k % 1000))),
            ];
            sp
        })
        .collect();
    traces(
        resource("orders", vec![kv("host.name", s("node-1"))]),
        spans,
    )
}

#[test]
#[ignore]
fn indexing_throughput() {
    let total_batches = 400u32;
    let per = 500u32;
    let inputs: Vec<IndexInput> = (0..total_batches)
        .map(|b| span_input(&request(b, per), u64::from(b) + 1))
        .collect();
    let span_bytes =
        inputs.iter().map(|i| i.payload.len()).sum::<usize>() / (total_batches * per) as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = IndexConfig::new(dir.path());
    cfg.writer_threads = 2;
    let clock = Arc::new(ManualClock::new(t0()));
    let storage = open_with_clock(cfg, &Registry::new(), clock.clone()).unwrap();
    let mut indexer = storage.indexer;
    let sink = indexer.sink_mut();
    let started = Instant::now();
    let mut last_commit = Instant::now();
    for input in &inputs {
        sink.apply(input, clock.now()).unwrap();
        if last_commit.elapsed() >= Duration::from_secs(1) {
            sink.commit(clock.now()).unwrap();
            last_commit = Instant::now();
        }
    }
    sink.commit(clock.now()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let n = f64::from(total_batches * per);
    indexer.close_for_tests();
    let disk: u64 = walk(dir.path());
    println!(
        "indexed {n} spans (~{span_bytes} B each in OTLP) in {secs:.2}s: {:.0} spans/s, {:.1} B/span on disk",
        n / secs,
        disk as f64 / n
    );
}

fn walk(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let md = e.metadata().unwrap();
        total += if md.is_dir() {
            walk(&e.path())
        } else {
            md.len()
        };
    }
    total
}
