//! The write-ahead log: the collector's promise that an acknowledged span or
//! log is never lost.
//!
//! Owns every file under the WAL directory (segments, `checkpoint`, `LOCK`),
//! the record framing (length + CRC32C), durability (group commit: one
//! `fdatasync` per batch of concurrent appends, answered only after it),
//! replay from the checkpoint, torn-tail repair at open, segment deletion
//! below the checkpoint, and the backlog limit. It must not decode payloads or
//! know about indexing: payloads are opaque bytes tagged with a [`RecordKind`],
//! and the indexer talks to it only through [`WalReader`] and
//! [`Wal::checkpoint`].
//!
//! ```text
//! Wal::append ──bounded queue──▶ writer thread (one write + fdatasync per group) ──▶ durable LSN
//!                                                                                      │
//! indexer ◀── WalReader::next_batch (durable records only, LSN order) ◀────────────────┘
//!   └── Wal::checkpoint(lsn) after its index commit: persisted, older segments deleted
//! ```
//!
//! Files: `record` (framing), `segment` (segment files, header, scan, lock),
//! `recovery` (open-time repair), `writer` (group-commit thread), `reader`,
//! `checkpoint`, `metrics`.

mod checkpoint;
mod metrics;
mod reader;
mod record;
mod recovery;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use metrics::WalMetrics;
pub use reader::WalReader;
pub use segment::lock_dir;

use segment::SegmentInfo;
use writer::{Append, Msg};

/// A position in the log: frame bytes since the log was created. A record's
/// `end_lsn` is the position just past it. LSNs only grow, across restarts
/// and repairs.
pub type Lsn = u64;

/// What a record's payload is (the WAL does not look inside).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A protobuf `ExportTraceServiceRequest`.
    Spans = 1,
    /// A protobuf `ExportLogsServiceRequest`.
    Logs = 2,
}

impl RecordKind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Spans),
            2 => Some(Self::Logs),
            _ => None,
        }
    }
}

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    pub kind: RecordKind,
    pub payload: Vec<u8>,
    /// LSN just past this record; checkpointing it means "indexed up to here".
    pub end_lsn: Lsn,
}

#[derive(Debug, Clone)]
pub struct WalConfig {
    pub dir: PathBuf,
    /// A new segment starts once the open one reaches this size.
    pub segment_bytes: u64,
    /// Durable but un-checkpointed bytes above which appends are refused.
    pub max_backlog_bytes: u64,
    /// Capacity of the append queue (callers wait when it is full).
    pub max_pending_appends: usize,
    /// The log never hands out an LSN below this: the highest LSN a consumer
    /// (the index) has already recorded. If the WAL directory was lost or
    /// restored from an older copy, new records still land above what the
    /// index would skip as "already applied".
    pub min_lsn: u64,
}

impl WalConfig {
    pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
    pub const DEFAULT_MAX_BACKLOG_BYTES: u64 = 1 << 30;
    pub const DEFAULT_MAX_PENDING_APPENDS: usize = 8192;

    /// The defaults: 64 MiB segments, 1 GiB backlog, 8192 queued appends.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            max_backlog_bytes: Self::DEFAULT_MAX_BACKLOG_BYTES,
            max_pending_appends: Self::DEFAULT_MAX_PENDING_APPENDS,
            min_lsn: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log backlog is over its limit; retry in {retry_after:?}")]
    Backpressure { retry_after: Duration },
    #[error("no space left on the WAL's disk")]
    DiskFull,
    #[error("the write-ahead log is closed")]
    Closed,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("corrupt write-ahead log: {0}")]
    Corrupt(String),
}

impl WalError {
    /// A copy for answering every waiter of a failed group.
    fn duplicate(&self) -> WalError {
        match self {
            WalError::Backpressure { retry_after } => WalError::Backpressure {
                retry_after: *retry_after,
            },
            WalError::DiskFull => WalError::DiskFull,
            WalError::Closed => WalError::Closed,
            WalError::Io { context, source } => WalError::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            WalError::Corrupt(m) => WalError::Corrupt(m.clone()),
        }
    }
}

/// How long a client should wait after a backlog rejection.
const BACKPRESSURE_RETRY: Duration = Duration::from_secs(1);

/// State shared by the handle, the writer thread and the reader.
struct Shared {
    dir: PathBuf,
    segment_bytes: u64,
    max_backlog_bytes: u64,
    durable: AtomicU64,
    checkpoint: AtomicU64,
    /// LSNs above the checkpoint that hold no records (gaps left by repairs);
    /// not backlog.
    gap_bytes: AtomicU64,
    closed: AtomicBool,
    /// Segments on disk, sorted by base LSN.
    segments: Mutex<Vec<SegmentInfo>>,
    /// Serializes checkpoint writes.
    checkpoint_lock: Mutex<()>,
    wake_lock: Mutex<()>,
    wake: Condvar,
    metrics: WalMetrics,
    #[cfg(test)]
    inject_write_error: Mutex<Option<i32>>,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn backlog(&self) -> u64 {
        let durable = self.durable.load(Ordering::Acquire);
        let checkpoint = self.checkpoint.load(Ordering::Acquire);
        durable
            .saturating_sub(checkpoint)
            .saturating_sub(self.gap_bytes.load(Ordering::Acquire))
    }

    fn publish_durable(&self, end: Lsn) {
        self.durable.store(end, Ordering::Release);
        self.metrics.backlog_bytes.set(self.backlog() as i64);
        self.wake_readers();
    }

    fn wake_readers(&self) {
        let _guard = self.wake_lock.lock();
        self.wake.notify_all();
    }

    /// Wait until the durable LSN passes `position`, the deadline, or close.
    fn wait_durable_past(&self, position: Lsn, deadline: Instant) -> Lsn {
        let mut guard = self.wake_lock.lock();
        loop {
            let durable = self.durable.load(Ordering::Acquire);
            if durable > position || self.is_closed() {
                return durable;
            }
            if self.wake.wait_until(&mut guard, deadline).timed_out() {
                return self.durable.load(Ordering::Acquire);
            }
        }
    }
}

/// Bytes of LSN gaps above `checkpoint`.
fn gap_above(segments: &[SegmentInfo], checkpoint: Lsn) -> u64 {
    segments
        .iter()
        .filter(|s| s.base > checkpoint)
        .map(|s| s.base - s.prev_end.max(checkpoint))
        .sum()
}

/// Handle to the log. Cheap to clone; appends from any task. Dropping the
/// last clone closes it.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Cancelled once the writer thread has answered everything and exited.
    writer_done: CancellationToken,
    /// The directory lock, released at close.
    lock: Mutex<Option<File>>,
}

impl Inner {
    fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Wake a writer blocked on an empty queue; a full queue wakes it anyway.
        let _ = self.tx.try_send(Msg::Wake);
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!("the WAL writer thread panicked");
            }
        }
        self.lock.lock().take();
        self.shared.wake_readers();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

impl Wal {
    /// Open or create the log in `cfg.dir`, repair a torn tail, start the
    /// writer thread. The reader starts at the stored checkpoint.
    pub fn open(cfg: WalConfig, metrics: WalMetrics) -> Result<(Wal, WalReader), WalError> {
        let existed = cfg.dir.is_dir();
        std::fs::create_dir_all(&cfg.dir)
            .map_err(segment::io_err(format!("creating {}", cfg.dir.display())))?;
        if !existed {
            if let Some(parent) = cfg.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                segment::sync_dir(parent)?;
            }
        }
        let lock = segment::lock_dir(&cfg.dir)?;
        let rec = recovery::recover(&cfg.dir, cfg.min_lsn, &metrics)?;
        let last = rec
            .segments
            .last()
            .ok_or_else(|| WalError::Corrupt("no segment after recovery".into()))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&last.path)
            .map_err(segment::io_err(format!("opening {}", last.path.display())))?;
        let last_base = last.base;

        let disk: u64 = rec
            .segments
            .iter()
            .map(|s| segment::file_len(&s.path))
            .sum();
        metrics.segments.set(rec.segments.len() as i64);
        metrics.disk_bytes.set(disk as i64);
        metrics.queue_limit.set(cfg.max_pending_appends as i64);
        metrics.queue_depth.set(0);

        let shared = Arc::new(Shared {
            dir: cfg.dir.clone(),
            segment_bytes: cfg.segment_bytes,
            max_backlog_bytes: cfg.max_backlog_bytes,
            durable: AtomicU64::new(rec.durable),
            checkpoint: AtomicU64::new(rec.checkpoint),
            gap_bytes: AtomicU64::new(gap_above(&rec.segments, rec.checkpoint)),
            closed: AtomicBool::new(false),
            segments: Mutex::new(rec.segments),
            checkpoint_lock: Mutex::new(()),
            wake_lock: Mutex::new(()),
            wake: Condvar::new(),
            metrics,
            #[cfg(test)]
            inject_write_error: Mutex::new(None),
        });
        shared.metrics.backlog_bytes.set(shared.backlog() as i64);
        let (tx, rx) = mpsc::channel(cfg.max_pending_appends.max(1));
        let w = writer::Writer::new(shared.clone(), file, last_base, rec.durable);
        let writer_done = CancellationToken::new();
        let done = writer_done.clone();
        let handle = std::thread::Builder::new()
            .name("skein-wal".into())
            .spawn(move || {
                let _done = done.drop_guard();
                w.run(rx)
            })
            .map_err(segment::io_err("starting the WAL writer thread"))?;
        tracing::info!(
            dir = %cfg.dir.display(),
            checkpoint = rec.checkpoint,
            durable = rec.durable,
            backlog_bytes = shared.backlog(),
            "write-ahead log open"
        );
        let reader = WalReader::new(shared.clone(), rec.checkpoint);
        let inner = Inner {
            shared,
            tx,
            writer: Mutex::new(Some(handle)),
            writer_done,
            lock: Mutex::new(Some(lock)),
        };
        Ok((
            Wal {
                inner: Arc::new(inner),
            },
            reader,
        ))
    }

    /// Append a record; resolves once it is written and fsynced together with
    /// the rest of its group. Returns the record's end LSN.
    pub async fn append(
        &self,
        kind: RecordKind,
        payload: impl Into<Bytes>,
    ) -> Result<Lsn, WalError> {
        let payload: Bytes = payload.into();
        let shared = &self.inner.shared;
        let m = &shared.metrics;
        if shared.is_closed() {
            m.rejected.with_label_values(&["closed"]).inc();
            return Err(WalError::Closed);
        }
        if payload.len() > record::MAX_PAYLOAD {
            m.rejected.with_label_values(&["too_large"]).inc();
            return Err(WalError::Io {
                context: format!("a WAL record of {} bytes", payload.len()),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("over the {} byte record limit", record::MAX_PAYLOAD),
                ),
            });
        }
        if shared.backlog() > shared.max_backlog_bytes {
            m.rejected.with_label_values(&["backlog"]).inc();
            return Err(WalError::Backpressure {
                retry_after: BACKPRESSURE_RETRY,
            });
        }
        let (reply, rx) = oneshot::channel();
        let tx = &self.inner.tx;
        if tx
            .send(Msg::Append(Append {
                kind,
                payload,
                reply,
            }))
            .await
            .is_err()
        {
            m.rejected.with_label_values(&["closed"]).inc();
            return Err(WalError::Closed);
        }
        m.queue_depth
            .set((tx.max_capacity() - tx.capacity()) as i64);
        // A message that slipped in as the writer exited is never answered:
        // its exit is the answer. The writer replies before it signals exit.
        tokio::select! {
            biased;
            reply = rx => reply.unwrap_or(Err(WalError::Closed)),
            () = self.inner.writer_done.cancelled() => {
                m.rejected.with_label_values(&["closed"]).inc();
                Err(WalError::Closed)
            }
        }
    }

    /// Everything with `end_lsn <= lsn` is indexed: persist that (atomically)
    /// and delete segments wholly below it. Never moves backwards; clamped to
    /// the durable LSN. Works after close, so the indexer can finish.
    pub fn checkpoint(&self, lsn: Lsn) -> Result<(), WalError> {
        let shared = &self.inner.shared;
        let _serial = shared.checkpoint_lock.lock();
        let lsn = lsn.min(self.durable_lsn());
        if lsn <= shared.checkpoint.load(Ordering::Acquire) {
            return Ok(());
        }
        checkpoint::write(&shared.dir, lsn)?;
        let doomed: Vec<SegmentInfo> = {
            let mut segs = shared.segments.lock();
            let keep_from = segs.iter().rposition(|s| s.base <= lsn).unwrap_or(0);
            let doomed = segs.drain(..keep_from).collect();
            shared
                .gap_bytes
                .store(gap_above(&segs, lsn), Ordering::Release);
            shared.checkpoint.store(lsn, Ordering::Release);
            doomed
        };
        shared.metrics.backlog_bytes.set(shared.backlog() as i64);
        for seg in &doomed {
            let size = segment::file_len(&seg.path);
            segment::remove(&seg.path)?;
            shared.metrics.segments.dec();
            shared.metrics.disk_bytes.sub(size as i64);
        }
        if !doomed.is_empty() {
            segment::sync_dir(&shared.dir)?;
        }
        Ok(())
    }

    pub fn checkpoint_lsn(&self) -> Lsn {
        self.inner.shared.checkpoint.load(Ordering::Acquire)
    }

    /// End of the last fsynced record.
    pub fn durable_lsn(&self) -> Lsn {
        self.inner.shared.durable.load(Ordering::Acquire)
    }

    /// Durable record bytes the indexer has not checkpointed yet.
    pub fn backlog_bytes(&self) -> u64 {
        self.inner.shared.backlog()
    }

    /// Stop accepting appends, write + fsync + answer what is queued, stop the
    /// writer thread, release the directory lock, wake the reader (it still
    /// returns the remaining durable records). Idempotent; blocks until the
    /// writer thread exits (at most one group).
    pub fn close(&self) {
        self.inner.close();
    }
}
