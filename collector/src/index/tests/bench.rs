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

fn inputs(batches: u32, per: u32) -> Vec<IndexInput> {
    (0..batches)
        .map(|b| span_input(&request(b, per), u64::from(b) + 1))
        .collect()
}

/// Decode only, then decode + build documents (no indexing), single thread.
fn front_half(inputs: &[IndexInput], n: f64) {
    use crate::index::catalog::Catalog;
    use crate::index::schema::SpanFields;
    use crate::index::spans::SpanDocBuilder;
    let started = Instant::now();
    for i in inputs {
        let req = ExportTraceServiceRequest::decode(i.payload.as_slice()).unwrap();
        std::hint::black_box(req);
    }
    let decode = started.elapsed().as_secs_f64();
    let (_, f) = SpanFields::build();
    let mut builder = SpanDocBuilder::new(f);
    let catalog = Catalog::new(1000, prometheus::IntCounter::new("x", "x").unwrap());
    let started = Instant::now();
    for i in inputs {
        let req = ExportTraceServiceRequest::decode(i.payload.as_slice()).unwrap();
        builder
            .build(&req, &i.payload, &catalog, |doc| {
                std::hint::black_box(doc);
                Ok::<(), ()>(())
            })
            .unwrap();
    }
    let build = started.elapsed().as_secs_f64();
    println!(
        "decode only: {:.0} spans/s; decode + build docs: {:.0} spans/s",
        n / decode,
        n / build
    );
}

/// User + system CPU seconds of this process (Linux `/proc`, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The design's naive reference: one document per span, flat key=value terms.
fn naive(inputs: &[IndexInput], n: f64) {
    use tantivy::schema::{Schema, FAST, INDEXED, STORED, STRING};
    let mut b = Schema::builder();
    let trace = b.add_bytes_field("trace", INDEXED | FAST);
    let span_f = b.add_bytes_field("span", INDEXED);
    let svc = b.add_text_field("svc", STRING);
    let op = b.add_text_field("op", STRING);
    let start = b.add_u64_field("start", INDEXED | FAST);
    let dur = b.add_u64_field("dur", INDEXED | FAST);
    let status = b.add_u64_field("status", INDEXED);
    let attrs = b.add_text_field("attrs", STRING);
    let raw = b.add_bytes_field("raw", STORED);
    let dir = tempfile::tempdir().unwrap();
    let index = tantivy::Index::create_in_dir(dir.path(), b.build()).unwrap();
    let mut w: tantivy::IndexWriter = index.writer_with_num_threads(2, 64 << 20).unwrap();
    let cpu = cpu_secs();
    let started = Instant::now();
    let mut last = Instant::now();
    for i in inputs {
        let req = ExportTraceServiceRequest::decode(i.payload.as_slice()).unwrap();
        for rs in &req.resource_spans {
            for ss in &rs.scope_spans {
                for sp in &ss.spans {
                    let mut d = tantivy::TantivyDocument::new();
                    d.add_bytes(trace, &sp.trace_id);
                    d.add_bytes(span_f, &sp.span_id);
                    d.add_text(svc, "orders");
                    d.add_text(op, &sp.name);
                    d.add_u64(start, sp.start_time_unix_nano);
                    d.add_u64(dur, sp.end_time_unix_nano - sp.start_time_unix_nano);
                    d.add_u64(status, 0);
                    for kv in &sp.attributes {
                        let mut t = String::new();
                        crate::index::attrs::tag_term(&mut t, &kv.key, kv.value.as_ref());
                        d.add_text(attrs, &t);
                    }
                    d.add_bytes(raw, &sp.encode_to_vec());
                    w.add_document(d).unwrap();
                }
            }
        }
        if last.elapsed() >= Duration::from_secs(1) {
            w.commit().unwrap();
            last = Instant::now();
        }
    }
    w.commit().unwrap();
    let secs = started.elapsed().as_secs_f64();
    w.wait_merging_threads().unwrap();
    let cpu = cpu_secs() - cpu;
    println!(
        "naive reference indexer: {:.0} spans/s, {:.2} µs CPU/span (incl. merges)",
        n / secs,
        cpu * 1e6 / n
    );
}

fn skein(inputs: &[IndexInput], n: f64, span_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = IndexConfig::new(dir.path());
    cfg.writer_threads = 2;
    let clock = Arc::new(ManualClock::new(t0()));
    let storage = open_with_clock(cfg, &Registry::new(), clock.clone()).unwrap();
    let mut indexer = storage.indexer;
    let sink = indexer.sink_mut();
    let cpu = cpu_secs();
    let started = Instant::now();
    let mut last_commit = Instant::now();
    for input in inputs {
        sink.apply(input, clock.now()).unwrap();
        if last_commit.elapsed() >= Duration::from_secs(1) {
            sink.commit(clock.now()).unwrap();
            last_commit = Instant::now();
        }
    }
    sink.commit(clock.now()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    indexer.close_for_tests();
    let cpu = cpu_secs() - cpu;
    let disk: u64 = walk(dir.path());
    println!(
        "skein indexer: {n} spans (~{span_bytes} B each in OTLP) in {secs:.2}s: {:.0} spans/s, {:.2} µs CPU/span (incl. merges), {:.1} B/span on disk",
        n / secs,
        cpu * 1e6 / n,
        disk as f64 / n
    );
}

#[test]
#[ignore]
fn indexing_throughput() {
    let (batches, per) = (600u32, 500u32);
    let inputs = inputs(batches, per);
    let n = f64::from(batches * per);
    let span_bytes =
        inputs.iter().map(|i| i.payload.len()).sum::<usize>() / (batches * per) as usize;
    front_half(&inputs, n);
    for _ in 0..2 {
        naive(&inputs, n);
        skein(&inputs, n, span_bytes);
    }
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
