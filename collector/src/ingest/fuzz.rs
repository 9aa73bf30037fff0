//! Property-based fuzzing of the ingest decoders and validators.
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's machines do
//! not have, so the decoders are fuzzed with proptest instead: seeds from the
//! corpus in `collector/fuzz/corpus/` (OTLP JSON; the protobuf seeds are their
//! encodings) are mutated — bytes flipped, inserted, removed, truncated — and
//! fed through the exact decode → validate path the receivers use, asserting
//! it never panics and that whatever validation keeps is well-formed.
//!
//! The same inputs, and requests generated to sit on every validation
//! boundary (ids one byte short, values one byte over the limit, fields
//! given twice so that prost merges them), hold the scan fast path to its
//! rule: whatever `skein_otlp::scan` calls clean, prost decodes, validation
//! keeps whole, and the instance ids it reports are the decoded request's.
//! Failing cases are persisted by proptest under `collector/proptest-regressions/`.

use std::path::PathBuf;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;

use super::traffic::{log_instance_ids, trace_instance_ids};
use super::validate::{validate_logs, validate_traces, Limits};
use skein_otlp::scan;

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

/// The scan's rule (see `skein_otlp::scan`): clean means prost decodes the
/// bytes, validation rejects nothing, and the counts and instance ids agree.
fn check_scan(data: &[u8], limits: Limits) {
    if let Some(scanned) = scan::traces(data, limits) {
        let mut req = ExportTraceServiceRequest::decode(data)
            .unwrap_or_else(|e| panic!("scanned clean but prost refuses it: {e}"));
        let ids: Vec<String> = trace_instance_ids(&req)
            .into_iter()
            .map(String::from)
            .collect();
        let r = validate_traces(&mut req, limits);
        assert_eq!(r.rejected(), 0, "scanned clean: {}", r.message("span"));
        assert_eq!(r.accepted, scanned.items);
        assert_eq!(scanned.instance_ids(data), ids);
    }
    if let Some(scanned) = scan::logs(data, limits) {
        let mut req = ExportLogsServiceRequest::decode(data)
            .unwrap_or_else(|e| panic!("scanned clean but prost refuses it: {e}"));
        let ids: Vec<String> = log_instance_ids(&req)
            .into_iter()
            .map(String::from)
            .collect();
        let r = validate_logs(&mut req, limits);
        assert_eq!(
            r.rejected(),
            0,
            "scanned clean: {}",
            r.message("log record")
        );
        assert_eq!(r.accepted, scanned.items);
        assert_eq!(scanned.instance_ids(data), ids);
    }
}

fn exercise(data: &[u8]) {
    check_scan(data, LIMITS);
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

/// Requests built on the validation boundaries, encoded field by field so
/// that messages can be given twice (concatenated encodings merge).
mod boundary {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use opentelemetry_proto::tonic::trace::v1::Span;

    /// The limit the generated values straddle.
    pub const LIMITS: Limits = Limits {
        max_attribute_bytes: 16,
    };

    /// `number` as a length-delimited field holding `bytes`.
    pub fn field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
        prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
        prost::encoding::encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    /// Mostly short, sometimes at the limit, now and then one byte over.
    fn size() -> impl Strategy<Value = usize> {
        prop_oneof![12 => 0usize..=2, 3 => 15usize..=16, 1 => Just(17usize)]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => prop::sample::select(vec!["a", "b"]).prop_map(String::from),
            1 => size().prop_map(|n| "x".repeat(n)),
        ]
    }

    fn value() -> impl Strategy<Value = AnyValue> {
        let leaf = prop_oneof![
            text().prop_map(Value::StringValue),
            any::<bool>().prop_map(Value::BoolValue),
            (-2i64..3).prop_map(Value::IntValue),
            Just(Value::DoubleValue(0.5)),
            size().prop_map(|n| Value::BytesValue(vec![7; n])),
        ]
        .prop_map(|v| AnyValue { value: Some(v) });
        let leaf = prop_oneof![leaf, Just(AnyValue { value: None })];
        leaf.prop_recursive(3, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                    value: Some(Value::ArrayValue(ArrayValue { values })),
                }),
                prop::collection::vec(("[ab]", inner), 0..3).prop_map(|kvs| AnyValue {
                    value: Some(Value::KvlistValue(KeyValueList {
                        values: kvs
                            .into_iter()
                            .map(|(key, v)| KeyValue {
                                key,
                                value: Some(v),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                }),
            ]
        })
    }

    fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
        prop::collection::vec(
            ("[ab]", prop::option::weighted(0.9, value())).prop_map(|(key, value)| KeyValue {
                key,
                value,
                ..Default::default()
            }),
            0..3,
        )
    }

    /// Mostly `lengths[0]` bytes, else one of the others; now and then zero.
    fn id(lengths: &'static [usize]) -> impl Strategy<Value = Vec<u8>> {
        let n = prop_oneof![
            16 => Just(lengths[0]),
            1 => prop::sample::select(lengths),
        ];
        (n, prop::bool::weighted(0.03)).prop_map(|(n, zero)| vec![if zero { 0 } else { 9 }; n])
    }

    fn span() -> BoxedStrategy<Span> {
        (
            id(&[16, 15, 0]),
            id(&[8, 7, 0]),
            id(&[0, 8, 4]),
            (0u64..3, 0u64..3, prop::bool::weighted(0.95)).prop_map(|(a, b, ordered)| {
                if ordered {
                    (a.min(b), a.max(b))
                } else {
                    (a, b)
                }
            }),
            attrs(),
            prop::collection::vec(attrs(), 0..2),
            prop::collection::vec((id(&[16, 3]), attrs()), 0..2),
        )
            .prop_map(
                |(trace_id, span_id, parent_span_id, (start, end), attributes, events, links)| {
                    Span {
                        trace_id,
                        span_id,
                        parent_span_id,
                        name: "op".into(),
                        start_time_unix_nano: start,
                        end_time_unix_nano: end,
                        attributes,
                        events: events
                            .into_iter()
                            .map(|attributes| Event {
                                name: "ev".into(),
                                attributes,
                                ..Default::default()
                            })
                            .collect(),
                        links: links
                            .into_iter()
                            .map(|(trace_id, attributes)| Link {
                                trace_id,
                                attributes,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }
                },
            )
            .boxed()
    }

    fn log_record() -> BoxedStrategy<LogRecord> {
        (
            id(&[16, 0, 15]),
            id(&[8, 0, 9]),
            prop::option::of(value()),
            attrs(),
        )
            .prop_map(|(trace_id, span_id, body, attributes)| LogRecord {
                trace_id,
                span_id,
                body,
                attributes,
                severity_number: 9,
                ..Default::default()
            })
            .boxed()
    }

    /// An item: one encoding, or two concatenated (prost merges them).
    fn item<T: Message + std::fmt::Debug + 'static>(
        one: BoxedStrategy<T>,
    ) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => one.clone().prop_map(|m| m.encode_to_vec()),
            1 => (one.clone(), one).prop_map(|(a, b)| {
                let mut out = a.encode_to_vec();
                out.extend(b.encode_to_vec());
                out
            }),
        ]
    }

    /// A resource attribute: keys that matter to the instance lookup, and
    /// values given once, twice (merged `value`), or as two oneof fields.
    fn resource_attr() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec!["service.instance.id", "service.name", "a"]),
            prop::collection::vec(value(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(key, values, separate)| {
                let mut kv = Vec::new();
                field(&mut kv, 1, key.as_bytes());
                if separate {
                    for v in &values {
                        field(&mut kv, 2, &v.encode_to_vec());
                    }
                } else if !values.is_empty() {
                    let joined: Vec<u8> = values.iter().flat_map(|v| v.encode_to_vec()).collect();
                    field(&mut kv, 2, &joined);
                }
                kv
            })
    }

    /// `Export*ServiceRequest` bytes: resources, each with its `Resource`
    /// given 0–2 times, and scopes of `items`.
    pub fn request(items: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
        let resource = (
            prop::collection::vec(prop::collection::vec(resource_attr(), 0..3), 0..3),
            prop::collection::vec(prop::collection::vec(items, 0..4), 1..3),
        )
            .prop_map(|(resources, scopes)| {
                let mut rs = Vec::new();
                for attrs in resources {
                    let mut r = Vec::new();
                    for kv in attrs {
                        field(&mut r, 1, &kv);
                    }
                    field(&mut rs, 1, &r);
                }
                for items in scopes {
                    let mut sc = Vec::new();
                    for item in items {
                        field(&mut sc, 2, &item);
                    }
                    field(&mut rs, 2, &sc);
                }
                rs
            });
        prop::collection::vec(resource, 1..3).prop_map(|resources| {
            let mut out = Vec::new();
            for rs in resources {
                field(&mut out, 1, &rs);
            }
            out
        })
    }

    pub fn traces() -> impl Strategy<Value = Vec<u8>> {
        request(item(span()))
    }

    pub fn logs() -> impl Strategy<Value = Vec<u8>> {
        request(item(log_record()))
    }
}

/// The boundary generators must reach both answers often, or the
/// properties below would prove little.
#[test]
fn boundary_requests_are_often_clean_and_often_not() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let mut tally = |strategy: BoxedStrategy<Vec<u8>>,
                     scan: fn(&[u8], Limits) -> Option<scan::Scanned>| {
        let (mut clean, mut slow) = (0, 0);
        for _ in 0..400 {
            let data = strategy
                .new_tree(&mut runner)
                .map(|t| t.current())
                .unwrap_or_default();
            match scan(&data, boundary::LIMITS) {
                Some(s) if s.items > 0 => clean += 1,
                Some(_) => {}
                None => slow += 1,
            }
        }
        (clean, slow)
    };
    for (name, (clean, slow)) in [
        ("traces", tally(boundary::traces().boxed(), scan::traces)),
        ("logs", tally(boundary::logs().boxed(), scan::logs)),
    ] {
        eprintln!("{name}: of 400, {clean} clean with items, {slow} for the slow path");
        assert!(clean >= 80, "{name}: only {clean} of 400 clean with items");
        assert!(slow >= 80, "{name}: only {slow} of 400 for the slow path");
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
    fn scan_holds_its_rule_on_boundary_traces(data in boundary::traces(), muts in prop::collection::vec(mutation(), 0..2)) {
        check_scan(&data, boundary::LIMITS);
        check_scan(&mutate(data, &muts), boundary::LIMITS);
    }

    #[test]
    fn scan_holds_its_rule_on_boundary_logs(data in boundary::logs(), muts in prop::collection::vec(mutation(), 0..2)) {
        check_scan(&data, boundary::LIMITS);
        check_scan(&mutate(data, &muts), boundary::LIMITS);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&data);
    }
}
