//! `skein-bench reference`: the baselines of DESIGN §9, measured on the same
//! pre-encoded span batches the ingest benchmark sends.
//!
//! - `decode`: prost decoding of `ExportTraceServiceRequest`s on one core.
//! - `tantivy`: the naive indexer: decode, one document per span (trace and
//!   span id bytes, service, operation, start, duration, status, attributes
//!   as flat `key=value` raw terms, the raw span stored), a commit every
//!   second, N indexing threads; then a final commit and a merge into one
//!   segment, and the bytes per span on disk.
//!
//! Fresh ids are patched into every batch (ids that repeat would make the
//! index unrealistically small); patching costs ~1% of decoding and is
//! included in the tantivy figure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use serde::Serialize;
use tantivy::merge_policy::NoMergePolicy;
use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexSettings, IndexWriter, TantivyDocument};

use crate::disk::dir_size;
use crate::gen::{now_unix_nanos, Batch, DataGen, IdGen, Signal};
use crate::report::{self, bytes, thousands, Machine, Report};

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// prost decode throughput of pre-encoded span batches on one core.
    Decode(DecodeArgs),
    /// The naive one-document-per-span tantivy indexer.
    Tantivy(TantivyArgs),
}

#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: u64,
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(clap::Args, Debug)]
pub struct TantivyArgs {
    #[arg(long, default_value_t = 2_000_000)]
    pub spans: u64,
    /// Indexing threads of the tantivy writer.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Writer memory budget, all threads together, in MiB.
    #[arg(long, default_value_t = 128)]
    pub memory_mb: usize,
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub commit_interval: Duration,
    /// Doc store compression (tantivy's default is lz4).
    #[arg(long, value_enum, default_value_t = DocStore::Lz4)]
    pub docstore: DocStore,
    /// Build the index here (must be empty) instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Doc store compressors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocStore {
    Lz4,
    Zstd,
}

impl DocStore {
    fn compressor(self) -> Compressor {
        match self {
            DocStore::Lz4 => Compressor::Lz4,
            DocStore::Zstd => Compressor::Zstd(ZstdCompressor::default()),
        }
    }
}

/// The `reference decode` report.
#[derive(Debug, Serialize)]
pub struct DecodeReport {
    pub bench: &'static str,
    pub spans: u64,
    pub span_bytes: f64,
    pub seconds: f64,
    pub spans_per_s: f64,
    pub mb_per_s: f64,
    pub machine: Machine,
}

/// Runs `reference decode`.
pub fn decode(args: DecodeArgs) -> Result<DecodeReport> {
    let templates = DataGen::new(args.seed).templates(Signal::Spans, 16, args.batch, 10)?;
    let mut ids = IdGen::new(0, args.seed);
    let pool: Vec<Batch> = (0..64)
        .map(|i| templates[i % templates.len()].patch(&mut ids, now_unix_nanos()))
        .collect();
    let pool_bytes: usize = pool.iter().map(|b| b.bytes.len()).sum();
    let pool_spans: usize = pool.iter().map(|b| b.items).sum();
    // One untimed pass warms caches and the allocator.
    for b in &pool {
        std::hint::black_box(ExportTraceServiceRequest::decode(b.bytes.as_ref())?);
    }
    let (mut spans, mut total_bytes) = (0u64, 0u64);
    let start = Instant::now();
    'outer: loop {
        for b in &pool {
            let req = ExportTraceServiceRequest::decode(b.bytes.as_ref())?;
            std::hint::black_box(&req);
            spans += b.items as u64;
            total_bytes += b.bytes.len() as u64;
            if spans >= args.spans {
                break 'outer;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(DecodeReport {
        bench: "reference_decode",
        spans,
        span_bytes: pool_bytes as f64 / pool_spans as f64,
        seconds: secs,
        spans_per_s: spans as f64 / secs,
        mb_per_s: total_bytes as f64 / secs / 1e6,
        machine: Machine::now(),
    })
}

impl Report for DecodeReport {
    fn human(&self) -> String {
        format!(
            "reference decode: {} spans/s on one core ({:.0} MB/s, {:.0} B/span, {} spans in {:.2} s)\n  machine       {}\n",
            thousands(self.spans_per_s),
            self.mb_per_s,
            self.span_bytes,
            thousands(self.spans as f64),
            self.seconds,
            self.machine.human()
        )
    }
}

/// Memory of the writer that only merges.
const MERGE_WRITER_MEMORY: usize = 32 << 20;

/// The naive span schema.
struct SpanFields {
    trace_id: Field,
    span_id: Field,
    service: Field,
    operation: Field,
    start: Field,
    duration: Field,
    status: Field,
    attr: Field,
    raw: Field,
}

impl SpanFields {
    fn schema() -> (Schema, Self) {
        let mut b = Schema::builder();
        let fields = Self {
            trace_id: b.add_bytes_field("trace_id", INDEXED),
            span_id: b.add_bytes_field("span_id", INDEXED),
            service: b.add_text_field("service", STRING),
            operation: b.add_text_field("operation", STRING),
            start: b.add_u64_field("start", INDEXED | FAST),
            duration: b.add_u64_field("duration", INDEXED | FAST),
            status: b.add_u64_field("status", INDEXED),
            attr: b.add_text_field("attr", STRING),
            raw: b.add_bytes_field("raw", STORED),
        };
        (b.build(), fields)
    }
}

fn value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attr_term(kv: &KeyValue) -> String {
    format!("{}={}", kv.key, value_text(&kv.value))
}

/// The `reference tantivy` report.
#[derive(Debug, Serialize)]
pub struct TantivyReport {
    pub bench: &'static str,
    pub spans: u64,
    pub threads: usize,
    pub memory_mb: usize,
    pub docstore: DocStore,
    pub commits: u64,
    /// Decode + documents + commits, up to the final commit (background
    /// merges may still be running then).
    pub index_seconds: f64,
    pub spans_per_s: f64,
    /// Segments left after the final commit and background merges.
    pub segments_before_merge: usize,
    pub merge_seconds: f64,
    pub bytes_on_disk: u64,
    pub bytes_per_span: f64,
    /// Bytes per span by index file kind (`store`, `term`, `idx`, `fast`, …).
    pub file_bytes_per_span: BTreeMap<String, f64>,
    /// CPU used by the whole process while indexing, in cores.
    pub cpu_cores: f64,
    pub machine: Machine,
}

/// Runs `reference tantivy`.
pub fn tantivy(args: TantivyArgs) -> Result<TantivyReport> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let (schema, f) = SpanFields::schema();
    let settings = IndexSettings {
        docstore_compression: args.docstore.compressor(),
        ..IndexSettings::default()
    };
    let index = Index::builder()
        .schema(schema)
        .settings(settings)
        .create_in_dir(&dir)
        .context("creating the index")?;
    let mut writer: IndexWriter =
        index.writer_with_num_threads(args.threads, args.memory_mb << 20)?;
    let templates = DataGen::new(args.seed).templates(Signal::Spans, 16, args.batch, 10)?;
    let mut ids = IdGen::new(0, args.seed);

    let cpu_start = report::process_cpu_time();
    let start = Instant::now();
    let (mut spans, mut commits, mut next) = (0u64, 0u64, 0usize);
    let mut last_commit = start;
    while spans < args.spans {
        let batch = templates[next % templates.len()].patch(&mut ids, now_unix_nanos());
        next += 1;
        let req = ExportTraceServiceRequest::decode(batch.bytes.as_ref())?;
        for rs in req.resource_spans {
            let resource_attrs = rs.resource.map(|r| r.attributes).unwrap_or_default();
            let service = resource_attrs
                .iter()
                .find(|kv| kv.key == "service.name")
                .map(|kv| value_text(&kv.value))
                .unwrap_or_default();
            let resource_terms: Vec<String> = resource_attrs
                .iter()
                .filter(|kv| kv.key != "service.name")
                .map(attr_term)
                .collect();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                let mut doc = TantivyDocument::new();
                doc.add_bytes(f.trace_id, &span.trace_id);
                doc.add_bytes(f.span_id, &span.span_id);
                doc.add_text(f.service, &service);
                doc.add_text(f.operation, &span.name);
                doc.add_u64(f.start, span.start_time_unix_nano);
                doc.add_u64(
                    f.duration,
                    span.end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                );
                doc.add_u64(f.status, span.status.as_ref().map_or(0, |s| s.code as u64));
                for term in &resource_terms {
                    doc.add_text(f.attr, term);
                }
                for kv in &span.attributes {
                    doc.add_text(f.attr, attr_term(kv));
                }
                doc.add_bytes(f.raw, &span.encode_to_vec());
                writer.add_document(doc)?;
                spans += 1;
            }
        }
        if last_commit.elapsed() >= args.commit_interval {
            writer.commit()?;
            commits += 1;
            last_commit = Instant::now();
        }
    }
    writer.commit()?;
    commits += 1;
    let index_seconds = start.elapsed().as_secs_f64();
    let cpu = report::process_cpu_time().saturating_sub(cpu_start);

    // Let background merges finish, then merge what is left into one
    // segment with a fresh writer (a segment being merged can't be merged
    // again).
    let merge_start = Instant::now();
    writer.wait_merging_threads()?;
    let mut writer: IndexWriter = index.writer_with_num_threads(1, MERGE_WRITER_MEMORY)?;
    writer.set_merge_policy(Box::new(NoMergePolicy));
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.garbage_collect_files().wait()?;
    writer.wait_merging_threads()?;
    let merge_seconds = merge_start.elapsed().as_secs_f64();
    let bytes_on_disk = dir_size(&dir)?;
    let file_bytes_per_span = bytes_by_extension(&dir)?
        .into_iter()
        .map(|(ext, b)| (ext, b as f64 / spans as f64))
        .collect();
    Ok(TantivyReport {
        bench: "reference_tantivy",
        spans,
        threads: args.threads,
        memory_mb: args.memory_mb,
        docstore: args.docstore,
        commits,
        index_seconds,
        spans_per_s: spans as f64 / index_seconds,
        segments_before_merge: segments.len(),
        merge_seconds,
        bytes_on_disk,
        bytes_per_span: bytes_on_disk as f64 / spans as f64,
        file_bytes_per_span,
        cpu_cores: cpu.as_secs_f64() / index_seconds,
        machine: Machine::now(),
    })
}

/// Sizes of the segment files in `dir` by extension (`store`, `term`, …).
fn bytes_by_extension(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            if ext != "json" && ext != "lock" {
                *out.entry(ext.to_string()).or_default() += std::fs::metadata(&path)?.len();
            }
        }
    }
    Ok(out)
}

impl Report for TantivyReport {
    fn human(&self) -> String {
        format!(
            "reference tantivy: {} spans/s ({} spans in {:.1} s, {} threads, {} MiB, {} commits, {:.2} cores busy)\n  on disk       {:.1} B/span ({} after merging {} segments in {:.1} s; docstore {:?})\n  B/span        {}\n  machine       {}\n",
            thousands(self.spans_per_s),
            thousands(self.spans as f64),
            self.index_seconds,
            self.threads,
            self.memory_mb,
            self.commits,
            self.cpu_cores,
            self.bytes_per_span,
            bytes(self.bytes_on_disk),
            self.segments_before_merge,
            self.merge_seconds,
            self.docstore,
            self.file_bytes_per_span
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.machine.human()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_indexer_runs_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let r = tantivy(TantivyArgs {
            spans: 2_000,
            threads: 1,
            memory_mb: 32,
            batch: 512,
            commit_interval: Duration::from_secs(1),
            docstore: DocStore::Zstd,
            dir: Some(dir.path().join("idx")),
            seed: 1,
        })
        .unwrap();
        assert!(r.spans >= 2_000);
        assert!(r.bytes_per_span > 10.0, "{r:?}");
        assert!(r.file_bytes_per_span["store"] > 10.0, "{r:?}");
        let index = Index::open_in_dir(dir.path().join("idx")).unwrap();
        assert!(matches!(
            index.settings().docstore_compression,
            Compressor::Zstd(_)
        ));
        let reader = index.reader().unwrap();
        assert_eq!(reader.searcher().num_docs(), r.spans);
    }

    #[test]
    fn attributes_become_flat_terms() {
        let kv = |k: &str, v| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        };
        assert_eq!(
            attr_term(&kv("http.status_code", any_value::Value::IntValue(200))),
            "http.status_code=200"
        );
        assert_eq!(
            attr_term(&kv(
                "customer.tier",
                any_value::Value::StringValue("gold".into())
            )),
            "customer.tier=gold"
        );
    }
}
