//! The buffer's writer thread: group commit.
//!
//! Takes every queued append, writes their frames to the current segment,
//! `fdatasync`s once and answers them all; rolls to a new segment (old one
//! fsynced, directory fsynced) when the current one is full. On a write
//! error the group's bytes are cut off again and every append in the group
//! gets the error. Owns the segment file being written; nothing else writes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::segment::{self, Kind};
use super::{BufferError, Inner};

/// Largest group written before one fsync.
const GROUP_BYTES: usize = 8 << 20;

/// One queued append.
pub struct Append {
    pub kind: Kind,
    pub items: u32,
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<Result<(), BufferError>>,
}

struct Current {
    base: u64,
    len: u64,
    file: File,
}

pub fn spawn(
    inner: Arc<Inner>,
    rx: mpsc::Receiver<Append>,
    end: u64,
    segment_bytes: u64,
) -> Result<std::thread::JoinHandle<()>, BufferError> {
    let last = inner.state.lock().segments.last().copied();
    let current = match last {
        Some(base) => {
            let path = segment::path(&inner.dir, base);
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| BufferError::io(&path, e))?;
            Current {
                base,
                len: end - base,
                file,
            }
        }
        None => create(&inner, end)?,
    };
    std::thread::Builder::new()
        .name("agent-buffer-writer".into())
        .spawn(move || run(inner, rx, current, segment_bytes))
        .map_err(|e| BufferError::io(&std::path::PathBuf::from("<thread>"), e))
}

fn create(inner: &Inner, base: u64) -> Result<Current, BufferError> {
    let path = segment::path(&inner.dir, base);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| BufferError::io(&path, e))?;
    segment::sync_dir(&inner.dir).map_err(|e| BufferError::io(&inner.dir, e))?;
    let mut st = inner.state.lock();
    if st.segments.last() != Some(&base) {
        st.segments.push(base);
    }
    inner.metrics.segments.set(st.segments.len() as i64);
    Ok(Current { base, len: 0, file })
}

fn run(inner: Arc<Inner>, mut rx: mpsc::Receiver<Append>, mut cur: Current, segment_bytes: u64) {
    let mut buf = Vec::with_capacity(1 << 16);
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        let mut bytes = group[0].payload.len();
        while bytes < GROUP_BYTES {
            match rx.try_recv() {
                Ok(a) => {
                    bytes += a.payload.len();
                    group.push(a);
                }
                Err(_) => break,
            }
        }
        inner.metrics.queue_depth.sub(group.len() as i64);
        let reserved: u64 = group
            .iter()
            .map(|a| segment::HEADER + a.payload.len() as u64)
            .sum();
        let result = write_group(&inner, &mut cur, &group, &mut buf, segment_bytes);
        {
            let mut st = inner.state.lock();
            st.pending -= reserved;
            if result.is_ok() {
                let end = cur.base + cur.len;
                inner.durable.store(end, Ordering::Release);
                inner.metrics.bytes.set(end.saturating_sub(st.acked) as i64);
            }
        }
        if result.is_ok() {
            inner.grew.notify_waiters();
        }
        let err_text = result.as_ref().err().map(|e| e.to_string());
        for a in group {
            let r = match &err_text {
                None => Ok(()),
                Some(msg) => Err(BufferError::Io {
                    path: inner.dir.clone(),
                    source: std::io::Error::other(msg.clone()),
                }),
            };
            let _ = a.reply.send(r);
        }
        if buf.capacity() > 1 << 20 {
            buf = Vec::with_capacity(1 << 16);
        }
    }
    // Every handle is gone: the last group was fsynced above.
}

fn write_group(
    inner: &Inner,
    cur: &mut Current,
    group: &[Append],
    buf: &mut Vec<u8>,
    segment_bytes: u64,
) -> Result<(), BufferError> {
    let start_base = cur.base;
    let start_len = cur.len;
    let result = (|| {
        for a in group {
            if cur.len > 0 && cur.len + segment::HEADER + a.payload.len() as u64 > segment_bytes {
                flush(inner, cur, buf)?;
                cur.file
                    .sync_data()
                    .map_err(|e| BufferError::io(&segment::path(&inner.dir, cur.base), e))?;
                *cur = create(inner, cur.base + cur.len)?;
            }
            segment::encode(a.kind, a.items, &a.payload, buf)
                .map_err(|e| BufferError::io(&segment::path(&inner.dir, cur.base), e))?;
            cur.len += segment::HEADER + a.payload.len() as u64;
        }
        flush(inner, cur, buf)?;
        cur.file
            .sync_data()
            .map_err(|e| BufferError::io(&segment::path(&inner.dir, cur.base), e))
    })();
    if let Err(e) = &result {
        tracing::error!("disk buffer write failed: {e}");
        buf.clear();
        // Cut the failed group off (only possible within the segment it
        // started in; a rolled segment keeps fsynced earlier frames).
        if cur.base == start_base {
            let _ = cur.file.set_len(start_len);
            cur.len = start_len;
        } else {
            let _ = cur.file.set_len(0);
            cur.len = 0;
        }
    }
    result
}

fn flush(inner: &Inner, cur: &mut Current, buf: &mut Vec<u8>) -> Result<(), BufferError> {
    if buf.is_empty() {
        return Ok(());
    }
    let r = cur.file.write_all(buf);
    buf.clear();
    r.map_err(|e| BufferError::io(&segment::path(&inner.dir, cur.base), e))
}
