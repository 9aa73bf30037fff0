//! Storage engine: WAL records → tantivy indexes, and the searches over them.
//!
//! This is the only module that imports tantivy; everything else talks to it
//! through the [`crate::query`] traits ([`crate::query::TraceStore`],
//! [`crate::query::LogStore`]) and the small [`RecordSource`] trait.
//!
//! What it owns:
//! - `<dir>/spans/<YYYYMMDDHH>/` and `<dir>/logs/<YYYYMMDDHH>/`: one tantivy
//!   index per hour of ingest time (UTC) and signal. Only the newest partition
//!   has an `IndexWriter`; older ones are read-only. Retention deletes whole
//!   partitions whose hour ended more than `retention` ago. A partition that
//!   cannot be opened is moved to `<dir>/<signal>/quarantine/` and logged.
//! - The indexer thread ([`Indexer`]): reads batches from a [`RecordSource`]
//!   (the WAL reader in production), decodes OTLP, adds one document per span
//!   or log record, commits every `commit_interval` with the last WAL
//!   end-LSN as tantivy commit payload, then checkpoints the source.
//! - [`SpanIndex`] and [`LogIndex`]: the read side, implementing the query
//!   traits over every partition.
//! - `skein_index_*` metrics ([`IndexMetrics`]).
//!
//! What it must not touch: the WAL files (it only calls
//! [`RecordSource::checkpoint`]), HTTP or JSON shapes, the query types in
//! `query/` (it implements them, it does not define them).
//!
//! Exactly-once indexing: each index's checkpoint is the largest commit
//! payload over its partitions. A record whose `end_lsn` is at or below the
//! checkpoint of its signal is skipped, so replaying the WAL after a crash
//! between a tantivy commit and the WAL checkpoint adds no duplicates.
//!
//! Wiring (see `pipeline.rs`):
//! ```ignore
//! let storage = index::open(IndexConfig::new(data_dir.join("index")), &registry)?;
//! let (control, join) = storage.indexer.spawn(wal_source, shutdown.child_token())?;
//! // storage.spans: Arc<SpanIndex> (TraceStore), storage.logs: Arc<LogIndex> (LogStore)
//! ```

mod attrs;
mod catalog;
mod clock;
mod indexer;
mod log_counts;
mod logs;
mod mapped;
mod metrics;
mod partition;
mod schema;
mod search_logs;
mod search_loki;
mod search_query;
mod search_spans;
mod search_traces;
mod spans;
#[cfg(test)]
mod tests;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use clock::{Clock, ManualClock, SystemClock};
pub use indexer::{IndexInput, Indexer, IndexerControl, RecordSource, Signal, SourceError};
pub use metrics::IndexMetrics;
pub use search_logs::LogIndex;
pub use search_spans::SpanIndex;

use crate::telemetry::Registry;

/// A WAL log sequence number (the WAL's `Lsn`).
pub type Lsn = u64;

/// Storage settings. [`IndexConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexConfig {
    /// Root directory; `spans/` and `logs/` are created below it.
    pub dir: PathBuf,
    /// Partitions whose time span ended longer ago than this are deleted (default 7 d).
    pub retention: Duration,
    /// How often new documents are committed and become searchable (default 1 s).
    pub commit_interval: Duration,
    /// Memory budget of each index writer (spans, logs), split over its threads (default 64 MiB).
    pub writer_memory_bytes: usize,
    /// Indexing threads of each writer (default 2).
    pub writer_threads: usize,
    /// Time span of one partition; whole hours only (default 1 h).
    pub partition_span: Duration,
}

impl IndexConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        IndexConfig {
            dir: dir.into(),
            retention: Duration::from_secs(7 * 24 * 3600),
            commit_interval: Duration::from_secs(1),
            writer_memory_bytes: 64 << 20,
            writer_threads: 2,
            partition_span: Duration::from_secs(3600),
        }
    }

    fn span_hours(&self) -> Result<u64, IndexError> {
        let secs = self.partition_span.as_secs();
        if secs == 0 || !secs.is_multiple_of(3600) || self.partition_span.subsec_nanos() != 0 {
            return Err(IndexError::Config(format!(
                "partition span must be a whole number of hours, got {:?}",
                self.partition_span
            )));
        }
        Ok(secs / 3600)
    }

    fn validate(&self) -> Result<(), IndexError> {
        self.span_hours()?;
        if self.retention < self.partition_span {
            return Err(IndexError::Config(format!(
                "retention ({:?}) must be at least one partition span ({:?})",
                self.retention, self.partition_span
            )));
        }
        if self.commit_interval.is_zero() {
            return Err(IndexError::Config("commit interval must be > 0".into()));
        }
        if self.writer_threads == 0 || self.writer_threads > 8 {
            return Err(IndexError::Config(format!(
                "writer threads must be 1..=8, got {}",
                self.writer_threads
            )));
        }
        Ok(())
    }
}

/// Why opening, indexing or committing failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("invalid index configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("registering index metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("indexer thread: {0}")]
    Thread(String),
}

impl IndexError {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IndexError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Everything [`open`] gives back: the two read sides for the API layer and
/// the indexer that owns the write side.
pub struct Storage {
    pub spans: Arc<SpanIndex>,
    pub logs: Arc<LogIndex>,
    /// Not running yet: call [`Indexer::spawn`] with the WAL source.
    pub indexer: Indexer,
}

/// Open (or create) the span and log indexes under `cfg.dir`, reopen existing
/// partitions, apply retention once and register the `skein_index_*` metrics.
pub fn open(cfg: IndexConfig, registry: &Registry) -> Result<Storage, IndexError> {
    open_with_clock(cfg, registry, Arc::new(SystemClock))
}

/// [`open`] with an explicit clock (tests use [`ManualClock`] to choose partitions).
pub fn open_with_clock(
    cfg: IndexConfig,
    registry: &Registry,
    clock: Arc<dyn Clock>,
) -> Result<Storage, IndexError> {
    cfg.validate()?;
    let metrics = IndexMetrics::register(registry)?;
    indexer::open_storage(cfg, metrics, clock)
}
