//! The indexer: a dedicated thread that reads WAL records through a
//! [`RecordSource`], decodes them, adds documents, commits every
//! `commit_interval` with the last end-LSN as commit payload, then
//! checkpoints the source.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::{Condvar, Mutex};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::catalog::{Catalog, DEFAULT_CAP};
use super::logs::LogDocBuilder;
use super::mapped::MappedFiles;
use super::metrics::IndexMetrics;
use super::partition::{PartitionSet, WriterSlot, LOG_MERGE_FAN_IN, SPAN_MERGE_FAN_IN};
use super::schema::{LogFields, SpanFields};
use super::spans::SpanDocBuilder;
use super::{Clock, IndexConfig, IndexError, LogIndex, Lsn, SpanIndex, Storage};

/// Largest batch asked from the source at once.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Longest wait for records, so pause and shutdown are noticed quickly.
const MAX_POLL: Duration = Duration::from_millis(200);
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Longest [`IndexerControl::pause`] waits for the indexer to stop reading.
const PAUSE_WAIT: Duration = Duration::from_secs(2);
const SOURCE_ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// Which OTLP signal a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Spans,
    Logs,
}

impl Signal {
    pub fn as_label(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Logs => "logs",
        }
    }
}

/// One WAL record as the indexer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInput {
    pub signal: Signal,
    /// Protobuf `ExportTraceServiceRequest` or `ExportLogsServiceRequest`.
    pub payload: Vec<u8>,
    /// LSN just past this record; checkpointing it means "indexed up to here".
    pub end_lsn: Lsn,
    /// When the record was appended, if the source knows (for the lag metric;
    /// the time it was read is used otherwise).
    pub appended_at: Option<SystemTime>,
}

impl IndexInput {
    pub fn new(signal: Signal, payload: Vec<u8>, end_lsn: Lsn) -> Self {
        IndexInput {
            signal,
            payload,
            end_lsn,
            appended_at: None,
        }
    }
}

/// Error type of [`RecordSource`] implementations.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the indexer reads records from (the WAL reader in production).
pub trait RecordSource: Send + 'static {
    /// Records in LSN order, at most about `max_bytes`, waiting up to
    /// `timeout` for the first one; an empty vector when none arrived.
    fn next_batch(
        &mut self,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<IndexInput>, SourceError>;
    /// Every record with `end_lsn <= lsn` is committed to the indexes.
    fn checkpoint(&mut self, lsn: Lsn) -> Result<(), SourceError>;
    /// Appended bytes not yet returned by `next_batch`, if known.
    fn backlog_bytes(&self) -> Option<u64> {
        None
    }
}

/// Pause/resume hook and progress of a running indexer. Cheap to clone.
#[derive(Clone)]
pub struct IndexerControl {
    inner: Arc<ControlInner>,
}

struct ControlInner {
    paused: AtomicBool,
    /// The indexer thread is running.
    running: AtomicBool,
    /// The indexer thread saw the pause, committed and stopped reading.
    parked: AtomicBool,
    committed: AtomicU64,
    lock: Mutex<()>,
    wake: Condvar,
}

impl IndexerControl {
    fn new(committed: Lsn) -> Self {
        IndexerControl {
            inner: Arc::new(ControlInner {
                paused: AtomicBool::new(false),
                running: AtomicBool::new(false),
                parked: AtomicBool::new(false),
                committed: AtomicU64::new(committed),
                lock: Mutex::new(()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Stop reading records. When the indexer is running this waits (at
    /// most 2 s) until it has committed what it already read and
    /// stopped reading, so records appended after `pause` returns stay
    /// unindexed until [`IndexerControl::resume`]. Test hook.
    pub fn pause(&self) {
        self.inner.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + PAUSE_WAIT;
        let mut guard = self.inner.lock.lock();
        while self.is_paused()
            && self.inner.running.load(Ordering::SeqCst)
            && !self.inner.parked.load(Ordering::SeqCst)
        {
            if self.inner.wake.wait_until(&mut guard, deadline).timed_out() {
                break;
            }
        }
    }

    pub fn resume(&self) {
        self.inner.paused.store(false, Ordering::SeqCst);
        let _guard = self.inner.lock.lock();
        self.inner.wake.notify_all();
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }

    /// Highest LSN committed to both indexes (and handed to `checkpoint`).
    pub fn committed_lsn(&self) -> Lsn {
        self.inner.committed.load(Ordering::SeqCst)
    }

    fn set_flag(&self, flag: &AtomicBool, value: bool) {
        if flag.swap(value, Ordering::SeqCst) != value {
            let _guard = self.inner.lock.lock();
            self.inner.wake.notify_all();
        }
    }

    fn wait_resumed(&self, max: Duration) {
        self.set_flag(&self.inner.parked, true);
        let mut guard = self.inner.lock.lock();
        if self.is_paused() {
            self.inner.wake.wait_for(&mut guard, max);
        }
    }
}

/// The write side: both writers, document builders and checkpoints.
pub(crate) struct Sink {
    spans: WriterSlot,
    logs: WriterSlot,
    span_docs: SpanDocBuilder,
    log_docs: LogDocBuilder,
    span_index: Arc<SpanIndex>,
    span_ckpt: Lsn,
    log_ckpt: Lsn,
    /// End LSN of the last record handled (indexed, skipped or undecodable).
    last_lsn: Lsn,
    committed_lsn: Lsn,
    last_ingest: Option<SystemTime>,
    retention: Duration,
    metrics: IndexMetrics,
}

impl Sink {
    pub fn dirty(&self) -> bool {
        self.last_lsn > self.committed_lsn
    }

    /// Index one record ingested at `now` (skip it if already committed).
    pub fn apply(&mut self, input: &IndexInput, now: SystemTime) -> Result<(), IndexError> {
        let label = input.signal.as_label();
        let ckpt = match input.signal {
            Signal::Spans => self.span_ckpt,
            Signal::Logs => self.log_ckpt,
        };
        let lsn_before = self.last_lsn;
        if input.end_lsn <= ckpt {
            self.metrics
                .replay_skipped
                .with_label_values(&[label])
                .inc();
        } else {
            let added = match input.signal {
                Signal::Spans => {
                    match ExportTraceServiceRequest::decode(input.payload.as_slice()) {
                        Ok(req) => {
                            let writer = self.spans.writer(now, lsn_before)?;
                            let catalog = &self.span_index.catalog;
                            let lsn_field = self.span_index.f.lsn;
                            Some(self.span_docs.build(
                                &req,
                                &input.payload,
                                catalog,
                                |mut doc| {
                                    doc.add_u64(lsn_field, input.end_lsn);
                                    writer.add_document(doc).map(|_| ())
                                },
                            )?)
                        }
                        Err(e) => decode_failed(input, &e),
                    }
                }
                Signal::Logs => match ExportLogsServiceRequest::decode(input.payload.as_slice()) {
                    Ok(req) => {
                        let writer = self.logs.writer(now, lsn_before)?;
                        Some(self.log_docs.build(&req, &input.payload, |doc| {
                            writer.add_document(doc).map(|_| ())
                        })?)
                    }
                    Err(e) => decode_failed(input, &e),
                },
            };
            match added {
                Some(n) => self
                    .metrics
                    .documents
                    .with_label_values(&[label])
                    .inc_by(n as u64),
                None => self
                    .metrics
                    .decode_failures
                    .with_label_values(&[label])
                    .inc(),
            }
        }
        self.last_lsn = self.last_lsn.max(input.end_lsn);
        self.last_ingest = Some(input.appended_at.unwrap_or(now));
        Ok(())
    }

    /// Commit both indexes with the last LSN as payload; returns it.
    pub fn commit(&mut self, now: SystemTime) -> Result<Lsn, IndexError> {
        let lsn = self.last_lsn;
        if self.spans.commit(lsn)? {
            self.span_ckpt = self.span_ckpt.max(lsn);
        }
        if self.logs.commit(lsn)? {
            self.log_ckpt = self.log_ckpt.max(lsn);
        }
        self.committed_lsn = lsn;
        self.metrics.committed_lsn.set(lsn as i64);
        if let Some(t) = self.last_ingest {
            let lag = now.duration_since(t).unwrap_or_default();
            self.metrics.lag_seconds.set(lag.as_secs_f64());
        }
        Ok(lsn)
    }

    /// Delete partitions that ended before `now - retention` (never the one
    /// being written). Call right after a commit.
    pub fn enforce_retention(&mut self, now: SystemTime) -> Result<(), IndexError> {
        let Some(cutoff) = now.checked_sub(self.retention) else {
            return Ok(());
        };
        // A writer idle since its partition expired is closed first.
        self.spans.retire_if_ended(cutoff, self.last_lsn)?;
        self.logs.retire_if_ended(cutoff, self.last_lsn)?;
        let dropped = self
            .spans
            .set
            .drop_ended_before(cutoff, self.spans.active_hour());
        self.logs
            .set
            .drop_ended_before(cutoff, self.logs.active_hour());
        if !dropped.is_empty() {
            self.span_index.rebuild_catalog()?;
        }
        Ok(())
    }

    pub fn close(self) -> Result<(), IndexError> {
        let spans = self.spans.close();
        let logs = self.logs.close();
        spans.and(logs)
    }
}

fn decode_failed(input: &IndexInput, e: &prost::DecodeError) -> Option<usize> {
    tracing::warn!(
        signal = input.signal.as_label(),
        end_lsn = input.end_lsn,
        bytes = input.payload.len(),
        error = %e,
        "WAL record undecodable; skipped"
    );
    None
}

/// The indexer, not yet running. Created by [`super::open`].
pub struct Indexer {
    sink: Sink,
    clock: Arc<dyn Clock>,
    commit_interval: Duration,
    control: IndexerControl,
}

/// Open both partition sets and build the read sides and the indexer.
pub(crate) fn open_storage(
    cfg: IndexConfig,
    metrics: IndexMetrics,
    clock: Arc<dyn Clock>,
) -> Result<Storage, IndexError> {
    let span_hours = cfg.span_hours()?;
    let files = MappedFiles::new(metrics.mapped.clone());
    let (span_schema, sf) = SpanFields::build();
    let (span_set, span_ckpt) = PartitionSet::open(
        cfg.dir.join("spans"),
        Signal::Spans,
        span_schema,
        span_hours,
        files.clone(),
        metrics.clone(),
    )?;
    let (log_schema, lf) = LogFields::build();
    let (log_set, log_ckpt) = PartitionSet::open(
        cfg.dir.join("logs"),
        Signal::Logs,
        log_schema.clone(),
        span_hours,
        files.clone(),
        metrics.clone(),
    )?;
    files
        .spawn_release_thread()
        .map_err(|e| IndexError::Thread(e.to_string()))?;
    let span_set = Arc::new(span_set);
    let log_set = Arc::new(log_set);
    let catalog = Catalog::new(DEFAULT_CAP, metrics.operations_overflow.clone());
    let spans = Arc::new(SpanIndex::new(span_set.clone(), sf, catalog));
    let logs = Arc::new(LogIndex::new(log_set.clone(), lf, log_schema));
    let committed = span_ckpt.min(log_ckpt);
    let mut sink = Sink {
        spans: WriterSlot::new(
            span_set,
            cfg.writer_memory_bytes,
            cfg.writer_threads,
            SPAN_MERGE_FAN_IN,
        ),
        logs: WriterSlot::new(
            log_set,
            cfg.writer_memory_bytes,
            cfg.writer_threads,
            LOG_MERGE_FAN_IN,
        ),
        span_docs: SpanDocBuilder::new(sf),
        log_docs: LogDocBuilder::new(lf),
        span_index: spans.clone(),
        span_ckpt,
        log_ckpt,
        last_lsn: committed,
        committed_lsn: committed,
        last_ingest: None,
        retention: cfg.retention,
        metrics: metrics.clone(),
    };
    sink.enforce_retention(clock.now())?;
    spans.rebuild_catalog()?;
    metrics.committed_lsn.set(committed as i64);
    tracing::info!(
        dir = %cfg.dir.display(),
        spans_checkpoint = span_ckpt,
        logs_checkpoint = log_ckpt,
        "indexes opened"
    );
    let indexer = Indexer {
        sink,
        clock,
        commit_interval: cfg.commit_interval,
        control: IndexerControl::new(committed),
    };
    Ok(Storage {
        spans,
        logs,
        indexer,
    })
}

impl Indexer {
    /// Committed checkpoints (spans, logs): at open, the largest commit
    /// payload of each index. Records at or below their signal's checkpoint
    /// are skipped.
    pub fn checkpoints(&self) -> (Lsn, Lsn) {
        (self.sink.span_ckpt, self.sink.log_ckpt)
    }

    /// The control handle (also returned by [`Indexer::spawn`]).
    pub fn control(&self) -> IndexerControl {
        self.control.clone()
    }

    /// Run on a dedicated thread named `skein-indexer` until `shutdown`.
    pub fn spawn<S: RecordSource>(
        self,
        source: S,
        shutdown: CancellationToken,
    ) -> Result<(IndexerControl, JoinHandle<Result<(), IndexError>>), IndexError> {
        let control = self.control.clone();
        let handle = std::thread::Builder::new()
            .name("skein-indexer".into())
            .spawn(move || self.run(source, shutdown))
            .map_err(|e| IndexError::Thread(e.to_string()))?;
        Ok((control, handle))
    }

    /// The indexer loop (blocking). On `shutdown` it indexes what it already
    /// read, commits, checkpoints and returns. A tantivy error (disk full,
    /// I/O) ends the loop with that error after logging it.
    pub fn run<S: RecordSource>(
        mut self,
        mut source: S,
        shutdown: CancellationToken,
    ) -> Result<(), IndexError> {
        self.control.set_flag(&self.control.inner.running, true);
        let result = self.run_loop(&mut source, &shutdown);
        self.control.set_flag(&self.control.inner.parked, false);
        self.control.set_flag(&self.control.inner.running, false);
        if let Err(e) = &result {
            tracing::error!(error = %e, "indexer stopped");
        }
        let closed = self.sink.close();
        result.and(closed)
    }

    fn run_loop<S: RecordSource>(
        &mut self,
        source: &mut S,
        shutdown: &CancellationToken,
    ) -> Result<(), IndexError> {
        let mut commit_due: Option<Instant> = None;
        let mut retention_due = Instant::now() + RETENTION_EVERY;
        while !shutdown.is_cancelled() {
            if self.control.is_paused() {
                self.sink.metrics.paused.set(1);
                if self.sink.dirty() {
                    self.commit_and_checkpoint(source)?;
                    commit_due = None;
                }
                self.control.wait_resumed(MAX_POLL);
                continue;
            }
            // Clear `parked` before the second look at `paused`, so a `pause`
            // that saw a stale `parked` is still seen here before reading.
            self.control.set_flag(&self.control.inner.parked, false);
            if self.control.is_paused() {
                continue;
            }
            self.sink.metrics.paused.set(0);
            let timeout = commit_due
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(MAX_POLL)
                .clamp(Duration::from_millis(1), MAX_POLL);
            match source.next_batch(MAX_BATCH_BYTES, timeout) {
                Ok(batch) => {
                    for input in &batch {
                        self.sink.apply(input, self.clock.now())?;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the WAL failed; retrying");
                    self.sink.metrics.source_errors.inc();
                    std::thread::sleep(SOURCE_ERROR_BACKOFF);
                }
            }
            if let Some(bytes) = source.backlog_bytes() {
                self.sink.metrics.lag_bytes.set(bytes as i64);
            }
            if self.sink.dirty() && commit_due.is_none() {
                commit_due = Some(Instant::now() + self.commit_interval);
            }
            if commit_due.is_some_and(|t| Instant::now() >= t) {
                self.commit_and_checkpoint(source)?;
                commit_due = None;
            }
            if Instant::now() >= retention_due {
                if self.sink.dirty() {
                    self.commit_and_checkpoint(source)?;
                    commit_due = None;
                }
                self.sink.enforce_retention(self.clock.now())?;
                retention_due = Instant::now() + RETENTION_EVERY;
            }
        }
        if self.sink.dirty() {
            self.commit_and_checkpoint(source)?;
        }
        tracing::info!(committed_lsn = self.sink.committed_lsn, "indexer stopped");
        Ok(())
    }

    fn commit_and_checkpoint<S: RecordSource>(&mut self, source: &mut S) -> Result<(), IndexError> {
        let lsn = self.sink.commit(self.clock.now())?;
        self.control.inner.committed.store(lsn, Ordering::SeqCst);
        if let Err(e) = source.checkpoint(lsn) {
            // The next commit checkpoints a later LSN; replay skips what is committed.
            tracing::warn!(lsn, error = %e, "WAL checkpoint failed");
            self.sink.metrics.source_errors.inc();
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn close_for_tests(self) {
        if let Err(e) = self.sink.close() {
            panic!("closing the indexer: {e}");
        }
    }

    #[cfg(test)]
    pub(crate) fn sink_mut(&mut self) -> &mut Sink {
        &mut self.sink
    }
}
