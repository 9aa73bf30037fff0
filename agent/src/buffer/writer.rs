//! The buffer's writer thread: group commit, and the background syncer.
//!
//! Takes every queued append, writes their frames to the current segment and
//! answers them all; rolls to a new segment when the current one is full.
//! When the data reaches the disk depends on [`SyncPolicy`]:
//! - [`SyncPolicy::Always`]: one `fdatasync` per group before the answer
//!   (an ack survives power loss; the app waits for the disk);
//! - [`SyncPolicy::Interval`]: the answer follows the `write(2)` (the data is
//!   in the page cache, so it survives SIGKILL of the agent) and a syncer
//!   thread `fdatasync`s written segments and the directory every interval,
//!   so a disk stall never reaches an app's export call.
//!
//! On a write error the group's bytes are cut off again and every append in
//! the group gets the error. Owns the segment file being written; nothing
//! else writes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::{mpsc, oneshot};

use super::segment::{self, Kind};
use super::{BufferError, Inner};

/// Largest group written at once.
const GROUP_BYTES: usize = 8 << 20;

/// When appended data is `fdatasync`ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Before the append is answered.
    Always,
    /// In the background, at most this long after the append was answered.
    Interval(Duration),
}

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
    file: Arc<File>,
}

/// What the syncer has to make durable.
#[derive(Default)]
struct Dirty {
    /// The segment being written, if written since the last sync.
    current: Option<Arc<File>>,
    /// Segments rolled away from since the last sync.
    rolled: Vec<Arc<File>>,
    /// A segment file was created since the last directory sync.
    dir: bool,
    stop: bool,
}

/// State shared by the writer and the syncer thread.
struct SyncShared {
    dirty: Mutex<Dirty>,
    wake: Condvar,
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
                file: Arc::new(file),
            }
        }
        None => {
            let cur = create(&inner, end)?;
            segment::sync_dir(&inner.dir).map_err(|e| BufferError::io(&inner.dir, e))?;
            cur
        }
    };
    let thread_err = |e| BufferError::io(&std::path::PathBuf::from("<thread>"), e);
    let syncer = match inner.policy {
        SyncPolicy::Always => None,
        SyncPolicy::Interval(every) => {
            let shared = Arc::new(SyncShared {
                dirty: Mutex::new(Dirty::default()),
                wake: Condvar::new(),
            });
            let (s, i) = (shared.clone(), inner.clone());
            let handle = std::thread::Builder::new()
                .name("agent-buffer-sync".into())
                .spawn(move || run_syncer(&i, &s, every))
                .map_err(thread_err)?;
            Some((shared, handle))
        }
    };
    std::thread::Builder::new()
        .name("agent-buffer-writer".into())
        .spawn(move || {
            run(
                &inner,
                rx,
                current,
                segment_bytes,
                syncer.as_ref().map(|(s, _)| &**s),
            );
            if let Some((shared, handle)) = syncer {
                shared.dirty.lock().stop = true;
                shared.wake.notify_one();
                let _ = handle.join();
            }
        })
        .map_err(thread_err)
}

/// Create the segment file at `base` (the directory entry is synced by the
/// caller: at once or by the syncer).
fn create(inner: &Inner, base: u64) -> Result<Current, BufferError> {
    let path = segment::path(&inner.dir, base);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| BufferError::io(&path, e))?;
    let mut st = inner.state.lock();
    if st.segments.last() != Some(&base) {
        st.segments.push(base);
    }
    inner.metrics.segments.set(st.segments.len() as i64);
    Ok(Current {
        base,
        len: 0,
        file: Arc::new(file),
    })
}

fn run(
    inner: &Inner,
    mut rx: mpsc::Receiver<Append>,
    mut cur: Current,
    segment_bytes: u64,
    syncer: Option<&SyncShared>,
) {
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
        let result = write_group(inner, &mut cur, &group, &mut buf, segment_bytes, syncer);
        {
            let mut st = inner.state.lock();
            st.pending -= reserved;
            if result.is_ok() {
                let end = cur.base + cur.len;
                inner.end.store(end, Ordering::Release);
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
    // Every handle is gone. Under `Always` the last group was synced above;
    // under `Interval` the syncer does a last round when told to stop.
}

fn write_group(
    inner: &Inner,
    cur: &mut Current,
    group: &[Append],
    buf: &mut Vec<u8>,
    segment_bytes: u64,
    syncer: Option<&SyncShared>,
) -> Result<(), BufferError> {
    let start_base = cur.base;
    let start_len = cur.len;
    let result = (|| {
        for a in group {
            if cur.len > 0 && cur.len + segment::HEADER + a.payload.len() as u64 > segment_bytes {
                flush(inner, cur, buf)?;
                let next = create(inner, cur.base + cur.len)?;
                let old = std::mem::replace(cur, next);
                match syncer {
                    None => {
                        sync(inner, &old.file, old.base)?;
                        segment::sync_dir(&inner.dir)
                            .map_err(|e| BufferError::io(&inner.dir, e))?;
                    }
                    Some(s) => {
                        let mut d = s.dirty.lock();
                        d.rolled.push(old.file);
                        d.dir = true;
                    }
                }
            }
            segment::encode(a.kind, a.items, &a.payload, buf)
                .map_err(|e| BufferError::io(&segment::path(&inner.dir, cur.base), e))?;
            cur.len += segment::HEADER + a.payload.len() as u64;
        }
        flush(inner, cur, buf)?;
        match syncer {
            None => sync(inner, &cur.file, cur.base),
            Some(s) => {
                s.dirty.lock().current = Some(cur.file.clone());
                Ok(())
            }
        }
    })();
    if let Err(e) = &result {
        tracing::error!("disk buffer write failed: {e}");
        buf.clear();
        // Cut the failed group off (only possible within the segment it
        // started in; a rolled segment keeps earlier frames).
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
    let r = (&*cur.file).write_all(buf);
    buf.clear();
    r.map_err(|e| BufferError::io(&segment::path(&inner.dir, cur.base), e))
}

/// `fdatasync` one segment, timed and with errors counted.
fn timed_sync(inner: &Inner, file: &File) -> std::io::Result<()> {
    let t = Instant::now();
    let r = file.sync_data();
    inner
        .metrics
        .fsync_seconds
        .observe(t.elapsed().as_secs_f64());
    if r.is_err() {
        inner.metrics.fsync_errors.inc();
    }
    r
}

fn sync(inner: &Inner, file: &File, base: u64) -> Result<(), BufferError> {
    timed_sync(inner, file).map_err(|e| BufferError::io(&segment::path(&inner.dir, base), e))
}

/// The syncer thread: every `every`, make what was written durable. Runs a
/// last round when stopped.
fn run_syncer(inner: &Inner, shared: &SyncShared, every: Duration) {
    loop {
        let (work, stop) = {
            let mut d = shared.dirty.lock();
            if !d.stop {
                let _ = shared.wake.wait_for(&mut d, every);
            }
            let stop = d.stop;
            (std::mem::take(&mut *d), stop)
        };
        for f in work.rolled.iter().chain(work.current.iter()) {
            // Errors are logged and counted; the frames stay on disk and
            // the next round syncs the file again if it is written again.
            if let Err(e) = timed_sync(inner, f) {
                tracing::error!("disk buffer: background fdatasync failed: {e}");
            }
        }
        if work.dir {
            if let Err(e) = segment::sync_dir(&inner.dir) {
                inner.metrics.fsync_errors.inc();
                tracing::error!(dir = %inner.dir.display(), "disk buffer: syncing the directory failed: {e}");
            }
        }
        if stop {
            return;
        }
    }
}
