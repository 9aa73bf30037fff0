//! The group-commit writer thread.
//!
//! Takes one append, drains whatever else is queued (up to a cap), writes the
//! whole group with one positioned write and one `fdatasync`, publishes the
//! new durable LSN and only then answers every waiter. Writes go to explicit
//! offsets, so a failed write can never shift later ones. On an error the file
//! is cut back to the last durable end (and fsynced) before anything else is
//! written; until that succeeds every group gets the error.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::segment::{self, SegmentInfo};
use super::{record, Lsn, RecordKind, Shared, WalError};

/// Most payload bytes and records one fsync covers.
const GROUP_BYTES: usize = 4 << 20;
const GROUP_RECORDS: usize = 1024;

pub struct Append {
    pub kind: RecordKind,
    pub payload: Bytes,
    pub reply: oneshot::Sender<Result<Lsn, WalError>>,
}

/// Queue messages; `Wake` only wakes the thread (used by close).
pub enum Msg {
    Append(Append),
    Wake,
}

pub struct Writer {
    shared: Arc<Shared>,
    file: File,
    /// Base LSN of the open segment.
    base: Lsn,
    /// LSN just past the last durable record.
    end: Lsn,
    /// Bytes past `end` may be on disk (a write failed and the cut did too).
    dirty_tail: bool,
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, file: File, base: Lsn, end: Lsn) -> Self {
        Writer {
            shared,
            file,
            base,
            end,
            dirty_tail: false,
            buf: Vec::new(),
        }
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut group: Vec<Append> = Vec::with_capacity(64);
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                if let Msg::Append(a) = msg {
                    bytes += a.payload.len();
                    group.push(a);
                }
                if bytes < GROUP_BYTES && group.len() < GROUP_RECORDS {
                    next = rx.try_recv().ok();
                }
            }
            self.shared.metrics.queue_depth.set(rx.len() as i64);
            if !group.is_empty() {
                self.commit(&mut group);
            }
            if self.shared.closed.load(Ordering::Acquire) && rx.is_empty() {
                break;
            }
        }
        // Closed: refuse what raced in after the last group.
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Append(a) = msg {
                self.shared
                    .metrics
                    .rejected
                    .with_label_values(&["closed"])
                    .inc();
                let _ = a.reply.send(Err(WalError::Closed));
            }
        }
        self.shared.metrics.queue_depth.set(0);
    }

    fn commit(&mut self, group: &mut Vec<Append>) {
        if let Err(e) = self.prepare() {
            tracing::error!(error = %e, "WAL is not writable");
            self.fail_group(group, &e);
            return;
        }
        self.buf.clear();
        let mut ends = Vec::with_capacity(group.len());
        for a in group.iter() {
            record::encode(&mut self.buf, a.kind, &a.payload);
            ends.push(self.end + self.buf.len() as Lsn);
        }
        let started = Instant::now();
        let offset = segment::offset_of(self.base, self.end);
        if let Err(e) = self.write_and_sync(offset) {
            self.dirty_tail = true;
            let err = segment::write_err("appending to the WAL", e);
            match self.cut_tail() {
                Ok(()) => {
                    tracing::warn!(error = %err, "WAL append failed; the partial write was cut away")
                }
                Err(cut) => {
                    tracing::error!(error = %err, cut_error = %cut, "WAL append failed and the partial write could not be cut yet")
                }
            }
            self.fail_group(group, &err);
            return;
        }
        let m = &self.shared.metrics;
        m.fsync_seconds.observe(started.elapsed().as_secs_f64());
        m.group_records.observe(group.len() as f64);
        m.appended_records.inc_by(group.len() as u64);
        m.appended_bytes.inc_by(self.buf.len() as u64);
        m.disk_bytes.add(self.buf.len() as i64);
        self.end += self.buf.len() as Lsn;
        self.shared.publish_durable(self.end);
        for (a, end) in group.drain(..).zip(ends) {
            let _ = a.reply.send(Ok(end));
        }
        if self.buf.capacity() > 2 * GROUP_BYTES {
            // One huge record should not pin its buffer forever.
            self.buf = Vec::new();
        }
    }

    fn write_and_sync(&mut self, offset: u64) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(errno) = self.shared.inject_write_error.lock().take() {
            // Simulate a write that got half-way before the disk filled up.
            self.file
                .write_all_at(&self.buf[..self.buf.len() / 2], offset)?;
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        self.file.write_all_at(&self.buf, offset)?;
        self.file.sync_data()
    }

    /// Before a group: cut leftovers of a failed write, rotate when full.
    fn prepare(&mut self) -> Result<(), WalError> {
        if self.dirty_tail {
            self.cut_tail()
                .map_err(|e| segment::write_err("cutting a failed WAL write", e))?;
        }
        let used = self.end - self.base;
        if used == 0 || used < self.shared.segment_bytes {
            return Ok(());
        }
        let seg = segment::create(&self.shared.dir, self.end, self.end)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg.path)
            .map_err(|e| segment::write_err(&format!("opening {}", seg.path.display()), e))?;
        self.file = file;
        self.base = seg.base;
        self.register(seg);
        Ok(())
    }

    fn register(&self, seg: SegmentInfo) {
        // Listed before any record in it is published as durable, so the
        // reader always finds the segment a durable LSN lives in.
        self.shared.segments.lock().push(seg);
        self.shared.metrics.segments.inc();
        self.shared.metrics.disk_bytes.add(segment::HEADER as i64);
    }

    fn cut_tail(&mut self) -> std::io::Result<()> {
        self.file.set_len(segment::offset_of(self.base, self.end))?;
        self.file.sync_all()?;
        self.dirty_tail = false;
        Ok(())
    }

    fn fail_group(&self, group: &mut Vec<Append>, err: &WalError) {
        let reason = match err {
            WalError::DiskFull => "disk_full",
            _ => "io_error",
        };
        for a in group.drain(..) {
            self.shared
                .metrics
                .rejected
                .with_label_values(&[reason])
                .inc();
            let _ = a.reply.send(Err(err.duplicate()));
        }
    }
}
