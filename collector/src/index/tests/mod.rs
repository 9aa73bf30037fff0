//! Index tests on real tantivy indexes in temporary directories, with an
//! explicit clock choosing the partitions.

mod bench;
mod indexer;
mod logs;
mod loki;
mod search;
mod spans;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::Event, span::Link, status::StatusCode, ResourceSpans, ScopeSpans, Span, Status,
};
use parking_lot::Mutex;
use prost::Message;
use tempfile::TempDir;

use super::{
    open_with_clock, Clock, IndexConfig, IndexInput, Indexer, LogIndex, Lsn, ManualClock,
    RecordSource, Signal, SourceError, SpanIndex,
};
use crate::telemetry::Registry;

/// 2024-05-01T10:00:00Z.
pub(super) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_557_600)
}

pub(super) const HOUR: Duration = Duration::from_secs(3600);

/// Nanoseconds of `t0() + secs`.
pub(super) fn ns(secs: u64) -> u64 {
    (t0() + Duration::from_secs(secs))
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub(super) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(super) fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

pub(super) fn tid(n: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 0xab;
    id[15] = n;
    id
}

pub(super) fn sid(n: u16) -> Vec<u8> {
    let mut id = vec![0u8; 8];
    id[0] = 0x5a;
    id[6..].copy_from_slice(&n.to_be_bytes());
    id
}

/// A span of trace `trace`, id `span`, starting `start_s` seconds after t0.
pub(super) fn span(trace: u8, span: u16, name: &str, start_s: u64, dur_ms: u64) -> Span {
    let start = ns(start_s);
    Span {
        trace_id: tid(trace).to_vec(),
        span_id: sid(span),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur_ms * 1_000_000,
        ..Default::default()
    }
}

pub(super) fn resource(service: &str, extra: Vec<KeyValue>) -> Resource {
    let mut attributes = vec![kv("service.name", s(service))];
    attributes.extend(extra);
    Resource {
        attributes,
        ..Default::default()
    }
}

pub(super) fn traces(res: Resource, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(res),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test-scope".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A span using every field, for lossless round trips.
pub(super) fn rich_span(trace: u8, n: u16, start_s: u64) -> Span {
    let mut sp = span(trace, n, "GET /rich", start_s, 12);
    sp.parent_span_id = sid(n + 1000);
    sp.trace_state = "k=v".into();
    sp.flags = 0x301;
    sp.kind = 3;
    sp.attributes = vec![
        kv("http.status_code", Value::IntValue(500)),
        kv("ratio", Value::DoubleValue(0.25)),
        kv("ok", Value::BoolValue(false)),
        kv("bytes", Value::BytesValue(vec![1, 2, 3])),
    ];
    sp.dropped_attributes_count = 2;
    sp.events = vec![Event {
        time_unix_nano: ns(start_s) + 5,
        name: "exception".into(),
        attributes: vec![kv("exception.message", s("boom"))],
        dropped_attributes_count: 1,
    }];
    sp.links = vec![Link {
        trace_id: tid(99).to_vec(),
        span_id: sid(7),
        trace_state: String::new(),
        attributes: vec![kv("link", s("yes"))],
        dropped_attributes_count: 0,
        flags: 1,
    }];
    sp.status = Some(Status {
        message: "it broke".into(),
        code: StatusCode::Error as i32,
    });
    sp
}

pub(super) fn log(body: &str, sev: i32, ts_s: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: ns(ts_s),
        observed_time_unix_nano: ns(ts_s) + 1,
        severity_number: sev,
        severity_text: match sev {
            17.. => "ERROR",
            13.. => "WARN",
            _ => "INFO",
        }
        .into(),
        body: Some(AnyValue {
            value: Some(s(body)),
        }),
        ..Default::default()
    }
}

pub(super) fn logs(res: Resource, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(res),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "log-scope".into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: "https://schema/scope".into(),
            }],
            schema_url: "https://schema/res".into(),
        }],
    }
}

pub(super) fn span_input(req: &ExportTraceServiceRequest, lsn: Lsn) -> IndexInput {
    IndexInput::new(Signal::Spans, req.encode_to_vec(), lsn)
}

pub(super) fn log_input(req: &ExportLogsServiceRequest, lsn: Lsn) -> IndexInput {
    IndexInput::new(Signal::Logs, req.encode_to_vec(), lsn)
}

/// Storage in a temp dir on a manual clock starting at t0.
pub(super) struct Env {
    pub dir: TempDir,
    pub clock: Arc<ManualClock>,
    pub registry: Registry,
    pub spans: Arc<SpanIndex>,
    pub logs: Arc<LogIndex>,
    /// `None` once handed to a thread by [`Env::take_indexer`].
    pub indexer: Option<Indexer>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        Env::open_in(dir, clock)
    }

    pub fn config(dir: &TempDir) -> IndexConfig {
        let mut cfg = IndexConfig::new(dir.path());
        cfg.writer_memory_bytes = 32 << 20;
        cfg.writer_threads = 1;
        cfg.commit_interval = Duration::from_millis(50);
        cfg
    }

    pub fn open_in(dir: TempDir, clock: Arc<ManualClock>) -> Env {
        let registry = Registry::new();
        let storage = open_with_clock(Env::config(&dir), &registry, clock.clone()).unwrap();
        Env {
            dir,
            clock,
            registry,
            spans: storage.spans,
            logs: storage.logs,
            indexer: Some(storage.indexer),
        }
    }

    pub fn indexer(&mut self) -> &mut Indexer {
        self.indexer.as_mut().expect("indexer was taken")
    }

    pub fn checkpoints(&self) -> (Lsn, Lsn) {
        self.indexer
            .as_ref()
            .expect("indexer was taken")
            .checkpoints()
    }

    pub fn enforce_retention(&mut self) {
        let now = self.clock.now();
        self.indexer().sink_mut().enforce_retention(now).unwrap();
    }

    pub fn take_indexer(&mut self) -> Indexer {
        self.indexer.take().expect("indexer was taken")
    }

    /// Close (waiting for merges) and open the same directory again.
    pub fn reopen(self) -> Env {
        let Env {
            dir,
            clock,
            indexer,
            spans,
            logs,
            ..
        } = self;
        drop((spans, logs));
        if let Some(indexer) = indexer {
            indexer.close_for_tests();
        }
        Env::open_in(dir, clock)
    }

    /// Apply inputs at the clock's current time, then commit.
    pub fn index(&mut self, inputs: &[IndexInput]) {
        let now = self.clock.now();
        let sink = self.indexer().sink_mut();
        for input in inputs {
            sink.apply(input, now).unwrap();
        }
        sink.commit(now).unwrap();
    }

    /// Value of a metric sample (`label` must match when given); 0 if absent.
    pub fn metric(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        let text = crate::telemetry::encode_text(&self.registry).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let base = key.split('{').next().unwrap_or(key);
            if base != name {
                continue;
            }
            if let Some((k, v)) = label {
                if !key.contains(&format!("{k}=\"{v}\"")) {
                    continue;
                }
            }
            return value.parse().unwrap();
        }
        0.0
    }
}

/// In-memory record source: tests push records, the indexer drains them.
#[derive(Clone, Default)]
pub(super) struct MemSource {
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Default)]
pub(super) struct MemInner {
    pub queue: VecDeque<IndexInput>,
    pub checkpoints: Vec<Lsn>,
    pub reads: usize,
}

impl MemSource {
    pub fn push(&self, input: IndexInput) {
        self.inner.lock().queue.push_back(input);
    }

    pub fn state<T>(&self, f: impl FnOnce(&MemInner) -> T) -> T {
        f(&self.inner.lock())
    }
}

impl RecordSource for MemSource {
    fn next_batch(
        &mut self,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<IndexInput>, SourceError> {
        {
            let mut inner = self.inner.lock();
            inner.reads += 1;
            if !inner.queue.is_empty() {
                let mut out = Vec::new();
                let mut bytes = 0;
                while let Some(front) = inner.queue.front() {
                    if !out.is_empty() && bytes + front.payload.len() > max_bytes {
                        break;
                    }
                    bytes += front.payload.len();
                    out.extend(inner.queue.pop_front());
                }
                return Ok(out);
            }
        }
        std::thread::sleep(timeout.min(Duration::from_millis(10)));
        Ok(Vec::new())
    }

    fn checkpoint(&mut self, lsn: Lsn) -> Result<(), SourceError> {
        self.inner.lock().checkpoints.push(lsn);
        Ok(())
    }
}
