//! Durability: what the collector acknowledged survives SIGKILL, and a torn
//! or corrupt tail of the write-ahead log is repaired at start-up.

use std::io::Write;
use std::path::PathBuf;

use skein_e2e::otlp::{self, hex, new_span_id, new_trace_id, GrpcClient};
use skein_e2e::stream::Streamer;
use skein_e2e::{wait_until, Collector};

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_data() {
    let mut c = Collector::start_fast(&[]);
    let streamer = Streamer::start(&c.grpc_endpoint(), 3);
    wait_until(
        std::time::Duration::from_secs(60),
        "300 acknowledged traces",
        || streamer.acked_traces() >= 300,
    );
    c.kill9();
    let acked = streamer.stop();
    assert!(
        !acked.errors.is_empty(),
        "the senders saw the collector die"
    );
    eprintln!(
        "acknowledged before SIGKILL: {} traces, {} logs; first errors: {:?}",
        acked.traces.len(),
        acked.logs.len(),
        acked.errors
    );

    c.restart();
    acked.assert_queryable(&c.api());
}

/// The newest `*.wal` segment under `<data-dir>/wal/`.
fn newest_segment(c: &Collector) -> PathBuf {
    let dir = c.data_dir().join("wal");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    segments
        .pop()
        .unwrap_or_else(|| panic!("no .wal segment in {}", dir.display()))
}

/// Send traces + logs, SIGKILL, damage the WAL's tail with `tail`, restart:
/// the repair is logged, everything acknowledged is there, new data is taken.
fn tail_damage_is_repaired(tail: &[u8]) {
    let mut c = Collector::start_fast(&[]);
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let mut before = Vec::new();
    for i in 0..20 {
        let (trace_id, span_id) = (new_trace_id(), new_span_id());
        let req = otlp::traces(
            "torn",
            vec![otlp::span(&trace_id, &span_id, &format!("before-{i}"))],
        );
        if i % 2 == 0 {
            grpc.export_traces(req).expect("acknowledged");
        } else {
            otlp::export_traces_http(&c.otlp_http_base(), &req);
        }
        let log = otlp::logs(
            "torn",
            vec![otlp::log_in_span(&trace_id, &span_id, "before the damage")],
        );
        grpc.export_logs(log).expect("acknowledged");
        before.push(hex(&trace_id));
    }
    c.kill9();

    let segment = newest_segment(&c);
    let len = std::fs::metadata(&segment).expect("segment metadata").len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| f.write_all(tail))
        .unwrap_or_else(|e| panic!("appending to {}: {e}", segment.display()));
    eprintln!(
        "appended {} bytes to {} ({len} bytes)",
        tail.len(),
        segment.display()
    );

    c.restart();
    let log = c.log_lines();
    assert!(
        log.iter().any(|l| l.to_ascii_lowercase().contains("torn")),
        "the collector logs a torn-tail repair:\n{}",
        log.join("\n")
    );

    let api = c.api();
    for id in &before {
        api.wait_trace(id, 1);
        api.wait_logs(&[("trace_id", id)], 1);
    }

    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let (after_grpc, after_http) = (new_trace_id(), new_trace_id());
    grpc.export_traces(otlp::traces(
        "torn",
        vec![otlp::span(&after_grpc, &new_span_id(), "after-grpc")],
    ))
    .expect("new data accepted after the repair");
    otlp::export_traces_http(
        &c.otlp_http_base(),
        &otlp::traces(
            "torn",
            vec![otlp::span(&after_http, &new_span_id(), "after-http")],
        ),
    );
    api.wait_trace(&hex(&after_grpc), 1);
    api.wait_trace(&hex(&after_http), 1);

    // And the repaired log survives another crash with the new data in it.
    c.kill9();
    c.restart();
    let api = c.api();
    api.wait_trace(&hex(&after_grpc), 1);
    api.wait_trace(&before[0], 1);
}

#[test]
fn half_written_record_at_wal_tail_is_repaired() {
    // A frame header announcing 4096 payload bytes, then only 100 of them.
    let mut half = Vec::new();
    half.extend_from_slice(&4096u32.to_le_bytes());
    half.extend_from_slice(&0xdead_beefu32.to_le_bytes());
    half.push(1);
    half.extend_from_slice(&[0x42; 100]);
    tail_damage_is_repaired(&half);
}

#[test]
fn garbage_at_wal_tail_is_repaired() {
    tail_damage_is_repaired(b"\x07garbage that is no WAL record at all\xff\xfe");
}

/// Regression: with the WAL directory lost but the index kept, new data used
/// to get LSNs the index had already committed and was skipped as "already
/// indexed". The WAL now starts above the index's commit payload.
#[test]
fn new_data_is_indexed_after_the_wal_directory_is_lost() {
    let mut c = Collector::start_fast(&[]);
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let send = |grpc: &mut GrpcClient, name: &str| {
        let trace_id = new_trace_id();
        let req = otlp::traces(
            "wal-lost",
            vec![otlp::span(&trace_id, &new_span_id(), name)],
        );
        grpc.export_traces(req).expect("export");
        hex(&trace_id)
    };
    let before: Vec<String> = (0..50)
        .map(|i| send(&mut grpc, &format!("before-{i}")))
        .collect();
    let api = c.api();
    for id in &before {
        api.wait_trace(id, 1);
    }
    let (status, _) = c.terminate();
    assert!(status.success());
    std::fs::remove_dir_all(c.data_dir().join("wal")).expect("removing the WAL dir");

    c.restart();
    let mut grpc = GrpcClient::new(&c.grpc_endpoint());
    let after = send(&mut grpc, "after");
    let api = c.api();
    api.wait_trace(&after, 1);
    for id in &before {
        assert!(api.trace(id).is_some(), "indexed trace {id} kept");
    }
}
