//! Property-based fuzzing of the ingest decoders and validators.
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's machines do
//! not have, so the decoders are fuzzed with proptest instead: seeds from the
//! corpus in `collector/fuzz/corpus/` (OTLP JSON; the protobuf seeds are their
//! encodings) are mutated — bytes flipped, inserted, removed, truncated — and
//! fed through the exact decode → validate path the receivers use, asserting
//! it never panics and that whatever validation keeps is well-formed.
//! Failing cases are persisted by proptest under `collector/proptest-regressions/`.

use std::path::PathBuf;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;

use super::validate::{validate_logs, validate_traces, Limits};

const LIMITS: Limits = Limits {
    max_attribute_bytes: 1024,
};

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(load_corpus)
}

fn load_corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut seeds = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Protobuf seeds: the encodings of the JSON seeds.
        if let Ok(t) = serde_json::from_slice::<ExportTraceServiceRequest>(&bytes) {
            seeds.push(t.encode_to_vec());
        }
        if let Ok(l) = serde_json::from_slice::<ExportLogsServiceRequest>(&bytes) {
            seeds.push(l.encode_to_vec());
        }
        seeds.push(bytes);
    }
    assert!(
        seeds.len() >= 8,
        "fuzz corpus is missing: {}",
        dir.display()
    );
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = data.len().max(1);
        match *m {
            Mutation::Flip(i, b) if !data.is_empty() => data[i % len] ^= b | 1,
            Mutation::Insert(i, b) => data.insert(i % (data.len() + 1), b),
            Mutation::Remove(i) if !data.is_empty() => {
                data.remove(i % len);
            }
            Mutation::Truncate(i) => data.truncate(i % (data.len() + 1)),
            _ => {}
        }
    }
    data
}

/// Whatever validation keeps must satisfy the invariants the indexer relies on.
fn check_traces(mut req: ExportTraceServiceRequest) {
    let before: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let r = validate_traces(&mut req, LIMITS);
    assert_eq!(r.accepted + r.rejected(), before as u64);
    for span in req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
    {
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert!(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    // The cleaned request must survive the WAL round trip unchanged.
    let bytes = req.encode_to_vec();
    assert_eq!(
        ExportTraceServiceRequest::decode(bytes.as_slice()).ok(),
        Some(req)
    );
}

fn check_logs(mut req: ExportLogsServiceRequest) {
    let before: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    let r = validate_logs(&mut req, LIMITS);
    assert_eq!(r.accepted + r.rejected(), before as u64);
    for rec in req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
    {
        assert!(rec.trace_id.is_empty() || rec.trace_id.len() == 16);
        assert!(rec.span_id.is_empty() || rec.span_id.len() == 8);
    }
}

fn exercise(data: &[u8]) {
    if let Ok(req) = ExportTraceServiceRequest::decode(data) {
        check_traces(req);
    }
    if let Ok(req) = ExportLogsServiceRequest::decode(data) {
        check_logs(req);
    }
    if let Ok(req) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        check_traces(req);
    }
    if let Ok(req) = serde_json::from_slice::<ExportLogsServiceRequest>(data) {
        check_logs(req);
    }
}

#[test]
fn corpus_seeds_decode_and_validate() {
    for seed in corpus() {
        exercise(seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_never_panics(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..8)) {
        let seeds = corpus();
        let data = mutate(seeds[seed.index(seeds.len())].clone(), &muts);
        exercise(&data);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&data);
    }
}
