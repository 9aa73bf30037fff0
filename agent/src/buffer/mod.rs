//! The disk buffer: every acknowledged span and log record lives here until
//! the collector has acknowledged it.
//!
//! Receivers and the tailer [`Buffer::append`] encoded OTLP requests; the
//! append returns once one writer thread has written the frame (group
//! commit: one `write` for a batch of concurrent appends), so an ack to an
//! app survives SIGKILL of the agent. When the data is `fdatasync`ed is the
//! [`SyncPolicy`] (`--buffer-fsync-interval`): before the answer, or by a
//! background thread within the interval (the default, so that a disk stall
//! never reaches an app's export call). The exporter reads frames in order
//! with a [`Reader`] and calls [`Buffer::ack`] once the collector accepted
//! them; the acknowledged position is persisted (`ack` file) and segments
//! wholly below it are deleted. Bounded by `--buffer-max-bytes` of
//! unacknowledged data: beyond it appends fail with [`BufferError::Full`]
//! (apps get 503/UNAVAILABLE + Retry-After). Owns the files under
//! `<state-dir>/buffer/`; knows nothing about OTLP or the network.

pub mod metrics;
mod reader;
pub mod segment;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Notify};

pub use metrics::BufferMetrics;
pub use reader::{Batch, Reader};
pub use segment::Kind;
pub use writer::SyncPolicy;

/// Appends that may wait for the writer thread.
const QUEUE: usize = 1024;

/// Why an append or the buffer failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// Unacknowledged data would exceed `--buffer-max-bytes`.
    #[error(
        "the agent's disk buffer is full ({used} of {max} bytes unacknowledged by the collector)"
    )]
    Full { used: u64, max: u64 },
    /// One frame larger than the whole buffer.
    #[error("a request of {size} bytes does not fit in the disk buffer ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    /// The writer has stopped (shutting down or a failed write).
    #[error("the disk buffer is closed")]
    Closed,
    #[error("disk buffer i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BufferError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        BufferError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Offsets shared by writer, reader and acker.
#[derive(Debug)]
struct State {
    /// Base offsets of the segment files on disk, ascending.
    segments: Vec<u64>,
    /// Everything below is acknowledged by the collector.
    acked: u64,
    /// Bytes reserved by appends still queued or being written.
    pending: u64,
}

struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// End of the written (acknowledged) data; readers never go past it.
    end: AtomicU64,
    /// How appends reach the disk.
    policy: SyncPolicy,
    /// Woken when `end` grows.
    grew: Notify,
    metrics: BufferMetrics,
}

/// A handle to the buffer; clones share it.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
    tx: mpsc::Sender<writer::Append>,
}

/// The join handle of the writer thread; [`BufferWriter::join`] waits for
/// the last group to be written and synced after every [`Buffer`] handle is
/// dropped.
pub struct BufferWriter(std::thread::JoinHandle<()>);

impl BufferWriter {
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl Buffer {
    /// Open (or create) the buffer in `dir`: repair a torn tail, drop
    /// acknowledged segments, start the writer thread.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        policy: SyncPolicy,
        metrics: BufferMetrics,
    ) -> Result<(Buffer, BufferWriter), BufferError> {
        std::fs::create_dir_all(dir).map_err(|e| BufferError::io(dir, e))?;
        let acked = read_ack(dir)?;
        let mut segments = segment::list(dir).map_err(|e| BufferError::io(dir, e))?;
        // The end of the data: the last segment's valid prefix (torn tail cut).
        let mut end = acked;
        if let Some(&last) = segments.last() {
            let path = segment::path(dir, last);
            let (valid, len) = segment::scan(&path).map_err(|e| BufferError::io(&path, e))?;
            if valid < len {
                tracing::warn!(
                    segment = %path.display(),
                    cut = len - valid,
                    "disk buffer: repaired a torn tail"
                );
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| BufferError::io(&path, e))?;
                f.set_len(valid).map_err(|e| BufferError::io(&path, e))?;
                f.sync_all().map_err(|e| BufferError::io(&path, e))?;
            }
            end = end.max(last + valid);
        }
        let acked = acked.min(end);
        // Segments wholly below the ack (a successor starts at or below it).
        while segments.len() > 1 && segments[1] <= acked {
            let path = segment::path(dir, segments[0]);
            std::fs::remove_file(&path).map_err(|e| BufferError::io(&path, e))?;
            segments.remove(0);
        }
        if let Some(&first) = segments.first() {
            if first > acked {
                tracing::warn!(
                    acked,
                    first,
                    "disk buffer: data between the ack and the first segment is missing"
                );
            }
        }
        metrics
            .max_bytes
            .set(i64::try_from(max_bytes).unwrap_or(i64::MAX));
        metrics.bytes.set((end - acked) as i64);
        metrics.segments.set(segments.len() as i64);
        let segment_bytes = (max_bytes / 8).clamp(64 << 10, 64 << 20);
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(State {
                segments,
                acked,
                pending: 0,
            }),
            end: AtomicU64::new(end),
            policy,
            grew: Notify::new(),
            metrics,
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = writer::spawn(inner.clone(), rx, end, segment_bytes)?;
        Ok((Buffer { inner, tx }, BufferWriter(handle)))
    }

    /// Append one encoded request of `items` spans or log records; returns
    /// once it is written (and fsynced under [`SyncPolicy::Always`]). Fails fast with [`BufferError::Full`].
    pub async fn append(
        &self,
        kind: Kind,
        items: u32,
        payload: Vec<u8>,
    ) -> Result<(), BufferError> {
        let size = segment::HEADER + payload.len() as u64;
        let max = self.inner.max_bytes;
        if size > max {
            return Err(BufferError::TooLarge { size, max });
        }
        {
            let mut st = self.inner.state.lock();
            let used = self.inner.end.load(Ordering::Acquire) - st.acked + st.pending;
            if used + size > max {
                self.inner.metrics.full.inc();
                return Err(BufferError::Full { used, max });
            }
            st.pending += size;
        }
        let (reply, rx) = oneshot::channel();
        let append = writer::Append {
            kind,
            items,
            payload,
            reply,
        };
        self.inner.metrics.queue_depth.inc();
        let sent = self.tx.send(append).await;
        if sent.is_err() {
            self.inner.metrics.queue_depth.dec();
            self.inner.state.lock().pending -= size;
            return Err(BufferError::Closed);
        }
        rx.await.unwrap_or(Err(BufferError::Closed))
    }

    /// The collector accepted everything below `offset`: persist it and
    /// delete segments wholly below it.
    pub fn ack(&self, offset: u64) -> Result<(), BufferError> {
        let dir = &self.inner.dir;
        write_ack(dir, offset, self.inner.policy == SyncPolicy::Always)?;
        let doomed: Vec<u64> = {
            let mut st = self.inner.state.lock();
            st.acked = st.acked.max(offset);
            let mut doomed = Vec::new();
            while st.segments.len() > 1 && st.segments[1] <= st.acked {
                doomed.push(st.segments.remove(0));
            }
            self.inner.metrics.segments.set(st.segments.len() as i64);
            self.inner.metrics.bytes.set(
                self.inner
                    .end
                    .load(Ordering::Acquire)
                    .saturating_sub(st.acked) as i64,
            );
            doomed
        };
        for base in doomed {
            let path = segment::path(dir, base);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(segment = %path.display(), "disk buffer: removing an acknowledged segment: {e}");
            }
        }
        Ok(())
    }

    /// A reader starting at the acknowledged position.
    pub fn reader(&self) -> Reader {
        let acked = self.inner.state.lock().acked;
        Reader::new(self.inner.clone(), acked)
    }

    /// `(unacknowledged bytes, limit)`.
    pub fn usage(&self) -> (u64, u64) {
        let st = self.inner.state.lock();
        let used = self.inner.end.load(Ordering::Acquire) - st.acked + st.pending;
        (used, self.inner.max_bytes)
    }

    /// Whether an append of `size` bytes would currently be refused.
    pub fn is_full(&self) -> bool {
        let (used, max) = self.usage();
        used + 4096 > max
    }
}

fn read_ack(dir: &Path) -> Result<u64, BufferError> {
    let path = dir.join("ack");
    match std::fs::read_to_string(&path) {
        // An unreadable ack (a power loss between the write and its sync
        // under `SyncPolicy::Interval`) sends everything on disk again:
        // duplicates, never loss.
        Ok(text) => Ok(text.trim().parse::<u64>().unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), "disk buffer: unreadable ack ({e}); resending everything buffered");
            0
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(BufferError::io(&path, e)),
    }
}

/// Write `ack` atomically (tmp + rename, the tmp fsynced first when `sync`).
/// A crash before the rename keeps the older ack: the data is sent again
/// (duplicates), never lost.
fn write_ack(dir: &Path, offset: u64, sync: bool) -> Result<(), BufferError> {
    let tmp = dir.join("ack.tmp");
    let path = dir.join("ack");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(offset.to_string().as_bytes())?;
        if sync {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| BufferError::io(&path, e))
}

#[cfg(test)]
mod tests;
