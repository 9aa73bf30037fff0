//! Durability of the registry in `<data dir>/registry/`: a snapshot file
//! (`snapshot.json`, written to a temporary name, fsynced, renamed) plus an
//! append-only log of the changes since (`log.<seq>`), replayed at start.
//!
//! Log framing: `u32 length LE | u32 CRC32C LE | JSON record`. A torn or
//! corrupt tail (crash mid-write) is cut at the last good record. One writer
//! thread owns the files and batches appends (group commit): membership
//! changes are fsynced before their caller is answered; renewals are written
//! without waiting (`write(2)` survives SIGKILL; only an OS crash can lose
//! the last renewals, which at worst lowers the stale-heartbeat floor).
//!
//! Snapshots are fuzzy and taken in slices, so that neither the registry
//! lock nor memory ever holds a copy of every instance (at 100k instances a
//! whole copy was 25 MB and tens of milliseconds under the lock). When the
//! log passes [`ROTATE_BYTES`] the registry sends the head (revision,
//! counters, history) taken under its lock; the writer starts the next log
//! at once, so every change from that moment on is in it, then copies the
//! instances 1,024 slots at a time, taking the lock for each slice and
//! writing appends in between. A slice may already show changes made after
//! the head; that is harmless because replay applies the new log on top:
//! events carry the whole instance after the change and are applied only
//! above the head's revision, renewals only raise the heartbeat revision,
//! purges remove. Once the snapshot is fsynced and renamed into place, the
//! logs before it are deleted. Loading replays every log from the
//! snapshot's `log_seq` on, in order, so a crash mid-snapshot (old snapshot,
//! two logs) loses nothing either.
//!
//! Owns only these files; it knows nothing about expiry or HTTP.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::model::{Event, InstanceView, SharedEvent};
use super::state::State;

/// Start a new snapshot once the log is this large.
pub const ROTATE_BYTES: u64 = 64 << 20;
/// Pending log messages; when full, heartbeats get 503 (see `mod.rs`).
pub const QUEUE_CAPACITY: usize = 65_536;
const SNAPSHOT: &str = "snapshot.json";
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a registry snapshot: {message}")]
    Snapshot { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One log record (owned, for replay).
#[derive(Debug, Deserialize)]
#[serde(tag = "t")]
enum Record {
    #[serde(rename = "e")]
    Event { e: Box<Event> },
    #[serde(rename = "r")]
    Renew {
        s: String,
        i: String,
        h: u64,
        at: u64,
    },
    #[serde(rename = "p")]
    Purge { s: String, i: String },
    #[serde(rename = "x")]
    Etcd { rev: i64 },
}

/// One log record (borrowed, for writing).
#[derive(Debug, Serialize)]
#[serde(tag = "t")]
pub enum RecordRef<'a> {
    #[serde(rename = "e")]
    Event { e: &'a Event },
    #[serde(rename = "r")]
    Renew {
        s: &'a str,
        i: &'a str,
        h: u64,
        at: u64,
    },
    #[serde(rename = "p")]
    Purge { s: &'a str, i: &'a str },
    #[serde(rename = "x")]
    Etcd { rev: i64 },
}

impl RecordRef<'_> {
    /// Framed bytes ready to append.
    pub fn frame(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 8);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
        out.extend_from_slice(&json);
        out
    }
}

/// The snapshot file's head: everything but the instances, which follow it
/// as `"instances":[…]` a slice at a time (see [`Writer::begin_snapshot`]).
#[derive(Serialize)]
struct SnapshotHeadOut<'a> {
    format: u32,
    revision: u64,
    restarts_total: u64,
    etcd_revision: i64,
    log_seq: u64,
    events: Vec<&'a Event>,
}

#[derive(Deserialize)]
struct SnapshotIn {
    format: u32,
    revision: u64,
    restarts_total: u64,
    etcd_revision: i64,
    log_seq: u64,
    instances: Vec<InstanceView>,
    events: Vec<Event>,
}

/// Where a snapshot starts: the counters and the history at the moment
/// the new log begins, taken under the registry lock.
pub struct SnapshotHead {
    pub revision: u64,
    pub restarts_total: u64,
    pub etcd_revision: i64,
    pub events: Vec<SharedEvent>,
}

impl SnapshotHead {
    pub fn of(state: &State) -> Self {
        SnapshotHead {
            revision: state.revision(),
            restarts_total: state.restarts_total(),
            etcd_revision: state.etcd_revision,
            events: state.history().all().cloned().collect(),
        }
    }
}

/// Hands the writer a snapshot's instances a slice at a time: called with
/// the slot to start from, it takes the registry lock, copies one slice and
/// returns it with the slot to continue from (`None`: that was the last).
/// It returns `None` itself once the registry is gone.
pub type Slices = Box<dyn FnMut(u32) -> Option<(Vec<InstanceView>, Option<u32>)> + Send>;

/// A durability acknowledgement.
pub type Ack = oneshot::Sender<Result<(), String>>;

pub enum Msg {
    Append {
        bytes: Vec<u8>,
        sync: bool,
        done: Option<Ack>,
    },
    /// Start a new log and write a snapshot of the state; `done` is
    /// answered once the snapshot is in place.
    Rotate {
        head: Box<SnapshotHead>,
        slices: Slices,
        done: Option<Ack>,
    },
}

/// Counters the writer shares with the registry.
#[derive(Debug, Default)]
pub struct LogStats {
    pub log_bytes: AtomicU64,
    pub rotating: AtomicBool,
    pub errors: AtomicU64,
}

/// Load `dir` into `state` (snapshot, then the log on top). Returns the
/// log sequence to continue and its valid length.
pub fn load(dir: &Path, state: &mut State) -> Result<(u64, u64), PersistError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let snap_path = dir.join(SNAPSHOT);
    let mut seq = 0;
    match std::fs::read(&snap_path) {
        Ok(bytes) => {
            let snap: SnapshotIn =
                serde_json::from_slice(&bytes).map_err(|e| PersistError::Snapshot {
                    path: snap_path.display().to_string(),
                    message: e.to_string(),
                })?;
            if snap.format != FORMAT {
                return Err(PersistError::Snapshot {
                    path: snap_path.display().to_string(),
                    message: format!("unknown format {}", snap.format),
                });
            }
            for v in &snap.instances {
                state.restore(v);
            }
            state.restore_revision(snap.revision, snap.restarts_total, snap.events);
            state.etcd_revision = snap.etcd_revision;
            seq = snap.log_seq;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&snap_path)(e)),
    }
    // The snapshot's log and every later one (a snapshot interrupted by a
    // crash leaves the log it had started), in order.
    let first = seq;
    let mut valid = replay(&log_path(dir, seq), state)?;
    while log_path(dir, seq + 1).exists() {
        seq += 1;
        valid = replay(&log_path(dir, seq), state)?;
    }
    // Older logs are leftovers of a rotation interrupted after its rename.
    remove_logs_before(dir, first);
    Ok((seq, valid))
}

/// Delete `log.<n>` for every `n < seq`.
fn remove_logs_before(dir: &Path, seq: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let old = name
            .strip_prefix("log.")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n < seq);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn log_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("log.{seq}"))
}

/// Apply every good record of `path`; returns the length of the good prefix.
fn replay(path: &Path, state: &mut State) -> Result<u64, PersistError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path)(e)),
    }
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let Some(body) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(rec) = serde_json::from_slice::<Record>(body) else {
            break;
        };
        match rec {
            Record::Event { e } => state.restore_event(Arc::new(*e)),
            Record::Renew { s, i, h, at } => state.restore_renewal(&s, &i, h, at),
            Record::Purge { s, i } => state.remove_by_name(&s, &i),
            Record::Etcd { rev } => state.etcd_revision = rev,
        }
        pos += 8 + len;
    }
    if pos < bytes.len() {
        tracing::warn!(
            "registry log {}: cut a torn or corrupt tail of {} bytes",
            path.display(),
            bytes.len() - pos
        );
    }
    Ok(pos as u64)
}

/// Start the writer thread appending to `log.<seq>` (cut to `valid` bytes).
pub fn start_writer(
    dir: &Path,
    seq: u64,
    valid: u64,
    stats: Arc<LogStats>,
) -> Result<(mpsc::Sender<Msg>, std::thread::JoinHandle<()>), PersistError> {
    let path = log_path(dir, seq);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    file.set_len(valid).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    sync_dir(dir);
    stats.log_bytes.store(valid, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let mut w = Writer {
        dir: dir.to_path_buf(),
        seq,
        file: open_append(&path)?,
        stats,
        job: None,
    };
    let handle = std::thread::Builder::new()
        .name("skein-registry-log".into())
        .spawn(move || w.run(rx))
        .map_err(io(dir))?;
    Ok((tx, handle))
}

fn open_append(path: &Path) -> Result<BufWriter<File>, PersistError> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io(path))?;
    Ok(BufWriter::with_capacity(256 << 10, f))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

struct Writer {
    dir: PathBuf,
    seq: u64,
    file: BufWriter<File>,
    stats: Arc<LogStats>,
    /// The snapshot being written, if any.
    job: Option<SnapshotJob>,
}

/// A snapshot in progress: its temporary file and where the next slice
/// starts.
struct SnapshotJob {
    revision: u64,
    /// The log it goes with (the one started with it).
    log_seq: u64,
    tmp: PathBuf,
    out: BufWriter<File>,
    slices: Slices,
    /// The slot the next slice starts at; `None` once all are written.
    next: Option<u32>,
    written: usize,
    done: Option<Ack>,
}

/// Instances per slice: about 0.3 ms under the registry lock.
pub const SLICE: u32 = 1024;

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut acks: Vec<Ack> = Vec::new();
        loop {
            // While a snapshot is being written, appends come first and a
            // slice is written whenever none is waiting.
            let first = if self.job.is_some() {
                match rx.try_recv() {
                    Ok(msg) => msg,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.step_snapshot();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.blocking_recv() {
                    Some(msg) => msg,
                    None => break,
                }
            };
            let mut next = Some(first);
            let mut sync = false;
            let mut result: Result<(), String> = Ok(());
            let mut batch = 0;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append {
                        bytes,
                        sync: s,
                        done,
                    } => {
                        sync |= s;
                        if result.is_ok() {
                            result = self.file.write_all(&bytes).map_err(|e| e.to_string());
                        }
                        self.stats
                            .log_bytes
                            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        acks.extend(done);
                    }
                    Msg::Rotate { head, slices, done } => {
                        // Everything before the rotation is durable in the
                        // old log before the new one starts.
                        if result.is_ok() {
                            result = self.commit(true);
                        }
                        answer(&mut acks, &result);
                        sync = false;
                        if result.is_ok() {
                            self.start_snapshot(&head, slices, done);
                        } else if let Some(done) = done {
                            let _ = done.send(result.clone());
                        }
                    }
                }
                batch += 1;
                if batch < 4096 {
                    next = rx.try_recv().ok();
                }
            }
            if result.is_ok() {
                result = self.commit(sync);
            }
            if let Err(e) = &result {
                tracing::error!("registry log write failed: {e}");
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            answer(&mut acks, &result);
        }
        // Shutting down: a snapshot in progress is dropped; the previous
        // snapshot and the logs since hold everything.
        if let Some(job) = self.job.take() {
            self.abandon(job, "the registry closed", false);
        }
        let _ = self.commit(true);
    }

    fn commit(&mut self, sync: bool) -> Result<(), String> {
        self.file.flush().map_err(|e| e.to_string())?;
        if sync {
            self.file.get_ref().sync_data().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Start the next log and a snapshot that goes with it. A snapshot
    /// still in progress is finished first.
    fn start_snapshot(&mut self, head: &SnapshotHead, slices: Slices, done: Option<Ack>) {
        while self.job.is_some() {
            self.step_snapshot();
        }
        match self.begin_snapshot(head, slices) {
            Ok(mut job) => {
                job.done = done;
                self.job = Some(job);
            }
            Err(e) => {
                tracing::error!("registry snapshot failed: {e}");
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.rotating.store(false, Ordering::Relaxed);
                if let Some(done) = done {
                    let _ = done.send(Err(e.to_string()));
                }
            }
        }
    }

    fn begin_snapshot(
        &mut self,
        head: &SnapshotHead,
        slices: Slices,
    ) -> Result<SnapshotJob, PersistError> {
        let next = self.seq + 1;
        let new_log = log_path(&self.dir, next);
        let file = open_append(&new_log)?;
        file.get_ref().sync_all().map_err(io(&new_log))?;
        sync_dir(&self.dir);
        // From here on every change goes to the new log.
        self.file = file;
        self.seq = next;
        self.stats.log_bytes.store(0, Ordering::Relaxed);

        let tmp = self.dir.join("snapshot.json.tmp");
        let f = File::create(&tmp).map_err(io(&tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let head_out = SnapshotHeadOut {
            format: FORMAT,
            revision: head.revision,
            restarts_total: head.restarts_total,
            etcd_revision: head.etcd_revision,
            log_seq: next,
            events: head.events.iter().map(|e| e.as_ref()).collect(),
        };
        let mut bytes = serde_json::to_vec(&head_out).map_err(|e| PersistError::Snapshot {
            path: tmp.display().to_string(),
            message: e.to_string(),
        })?;
        // Reopen the object: `{…head…,"instances":[` and the slices follow.
        bytes.pop();
        bytes.extend_from_slice(br#","instances":["#);
        out.write_all(&bytes).map_err(io(&tmp))?;
        Ok(SnapshotJob {
            revision: head.revision,
            log_seq: next,
            tmp,
            out,
            slices,
            next: Some(0),
            written: 0,
            done: None,
        })
    }

    /// Write one slice of the snapshot in progress, or finish it.
    fn step_snapshot(&mut self) {
        let Some(mut job) = self.job.take() else {
            return;
        };
        let Some(from) = job.next else {
            if let Err(e) = self.finish_snapshot(&mut job) {
                self.abandon(job, &e.to_string(), true);
            }
            return;
        };
        let Some((views, next)) = (job.slices)(from) else {
            self.abandon(job, "the registry closed", false);
            return;
        };
        let mut written = Ok(());
        for v in &views {
            let sep: &[u8] = if job.written == 0 { b"" } else { b"," };
            written = job
                .out
                .write_all(sep)
                .map_err(|e| e.to_string())
                .and_then(|()| serde_json::to_writer(&mut job.out, v).map_err(|e| e.to_string()));
            if written.is_err() {
                break;
            }
            job.written += 1;
        }
        match written {
            Ok(()) => {
                job.next = next;
                self.job = Some(job);
            }
            Err(e) => self.abandon(job, &e, true),
        }
    }

    fn finish_snapshot(&mut self, job: &mut SnapshotJob) -> Result<(), PersistError> {
        job.out.write_all(b"]}").map_err(io(&job.tmp))?;
        job.out.flush().map_err(io(&job.tmp))?;
        job.out.get_ref().sync_all().map_err(io(&job.tmp))?;
        let snap_path = self.dir.join(SNAPSHOT);
        std::fs::rename(&job.tmp, &snap_path).map_err(io(&snap_path))?;
        sync_dir(&self.dir);
        remove_logs_before(&self.dir, job.log_seq);
        tracing::info!(
            revision = job.revision,
            instances = job.written,
            "registry snapshot written"
        );
        self.stats.rotating.store(false, Ordering::Relaxed);
        release_free_memory();
        if let Some(done) = job.done.take() {
            let _ = done.send(Ok(()));
        }
        Ok(())
    }

    /// Drop a snapshot that cannot be finished. Nothing is lost: the
    /// previous snapshot and every log since it are kept and replayed.
    fn abandon(&mut self, mut job: SnapshotJob, why: &str, failed: bool) {
        if failed {
            tracing::error!("registry snapshot failed: {why}");
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        } else {
            tracing::info!("registry snapshot not written: {why}");
        }
        let _ = std::fs::remove_file(&job.tmp);
        self.stats.rotating.store(false, Ordering::Relaxed);
        if let Some(done) = job.done.take() {
            let _ = done.send(Err(format!("registry snapshot not written: {why}")));
        }
    }
}

/// Hand the snapshot's freed memory back to the OS. The slices and the
/// serializer's buffers are freed as it goes; the allocator keeps such
/// freed pages as "dirty" and lets them decay over seconds, during which
/// they count as resident. This purges them now, on the writer thread, once
/// per snapshot. The binary's allocator is jemalloc (see
/// `main.rs`); where it is not (unit tests), the call reaches an idle
/// jemalloc and does nothing.
fn release_free_memory() {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena, no input or output.
    const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated and this mallctl takes no old or
    // new value, so all four pointer/length arguments are null/zero.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(rc, "jemalloc purge refused");
    }
}

fn answer(acks: &mut Vec<Ack>, result: &Result<(), String>) {
    for a in acks.drain(..) {
        let _ = a.send(result.clone());
    }
}

#[cfg(test)]
mod tests {
    //! The fuzzy snapshot: changes made while the slices are taken must
    //! come back exactly once after a restart, whether the snapshot was
    //! finished or cut short.
    use std::collections::BTreeMap;

    use parking_lot::Mutex;

    use super::*;
    use crate::registry::model::{Health, Heartbeat, Source};

    const NOW: u64 = 1_700_000_000_000;
    /// Three slices' worth, so that changes land before, in and after the
    /// slice being taken.
    const N: usize = 2 * SLICE as usize + 500;

    fn hb(instance: &str, rev: u64) -> Heartbeat {
        Heartbeat {
            service: "svc".into(),
            instance: instance.into(),
            ttl_ms: 60_000,
            heartbeat_revision: rev,
            address: format!("10.0.0.1:{rev}"),
            metadata: BTreeMap::from([("zone".to_string(), "a".to_string())]),
            health: Health::Passing,
            source: Source::Http,
        }
    }

    /// Apply what `mod.rs` would and log it the way it does.
    struct Driver {
        state: Arc<Mutex<State>>,
        tx: mpsc::Sender<Msg>,
    }

    impl Driver {
        fn log(&self, bytes: Vec<u8>) {
            self.tx
                .blocking_send(Msg::Append {
                    bytes,
                    sync: true,
                    done: None,
                })
                .unwrap();
        }

        fn heartbeat(&self, instance: &str, rev: u64, now: u64) {
            let (reply, event) = self.state.lock().heartbeat(hb(instance, rev), now).unwrap();
            match event {
                Some(e) => self.log(RecordRef::Event { e: &e }.frame()),
                None => self.log(
                    RecordRef::Renew {
                        s: "svc",
                        i: instance,
                        h: reply.heartbeat_revision,
                        at: now,
                    }
                    .frame(),
                ),
            }
        }

        fn deregister(&self, instance: &str, now: u64) {
            let e = self
                .state
                .lock()
                .deregister("svc", instance, Some("bye"), now)
                .unwrap()
                .unwrap();
            self.log(RecordRef::Event { e: &e }.frame());
        }

        fn purge(&self, instance: &str) {
            self.state.lock().remove_by_name("svc", instance);
            self.log(
                RecordRef::Purge {
                    s: "svc",
                    i: instance,
                }
                .frame(),
            );
        }

        /// Changes to instances in the slice already written, the one about
        /// to be taken and a later one, plus a new instance (a new slot at
        /// the end) and a restart (counted once, not twice, on replay).
        fn change_everything(&self) {
            let later = NOW + 1_000;
            self.deregister("i5", later);
            self.heartbeat("i7", 2, later);
            self.heartbeat("i1100", 2, later);
            self.deregister("i2300", later);
            self.heartbeat("i2300", 3, later + 1);
            self.purge("i2400");
            self.heartbeat("new-1", 1, later);
        }
    }

    /// The views to compare: the deadline is re-armed at start anyway, and
    /// `restarts_last_hour` depends on when it is read.
    fn comparable(state: &State) -> Vec<InstanceView> {
        let mut views = state.snapshot(NOW);
        for v in &mut views {
            v.expires_at_unix_ms = None;
            v.restarts_last_hour = 0;
        }
        views
    }

    /// Registers `N` instances, then snapshots while `change_everything`
    /// runs after the first slice; `cut` makes the slices give out there.
    /// Returns the directory, the state as the registry held it at the end,
    /// and what the snapshot's requester was told.
    fn snapshot_with_changes(
        cut: bool,
    ) -> (tempfile::TempDir, Arc<Mutex<State>>, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(LogStats::default());
        let (tx, writer) = start_writer(dir.path(), 0, 0, stats.clone()).unwrap();
        let state = Arc::new(Mutex::new(State::new(100, 1_000_000)));
        let driver = Driver {
            state: state.clone(),
            tx: tx.clone(),
        };
        for n in 0..N {
            driver.heartbeat(&format!("i{n}"), 1, NOW);
        }
        driver.heartbeat("i3", 2, NOW);

        let sliced = state.clone();
        let mut calls = 0;
        let mut driver = Some(driver);
        let slices: Slices = Box::new(move |from| {
            calls += 1;
            if calls == 2 {
                if let Some(d) = driver.take() {
                    d.change_everything();
                }
                if cut {
                    return None;
                }
            }
            Some(sliced.lock().snapshot_slice(from, SLICE, NOW))
        });
        let (done_tx, done_rx) = oneshot::channel();
        let head = Box::new(SnapshotHead::of(&state.lock()));
        stats.rotating.store(true, Ordering::Relaxed);
        tx.blocking_send(Msg::Rotate {
            head,
            slices,
            done: Some(done_tx),
        })
        .unwrap();
        let told = done_rx.blocking_recv().unwrap();
        assert!(!stats.rotating.load(Ordering::Relaxed));
        drop(tx);
        writer.join().unwrap();
        (dir, state, told)
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }

    fn assert_same(loaded: &State, held: &State) {
        assert_eq!(loaded.revision(), held.revision());
        assert_eq!(loaded.restarts_total(), held.restarts_total());
        assert_eq!(held.restarts_total(), 1, "the one restart");
        assert_eq!(loaded.len(), held.len());
        assert_eq!(comparable(loaded), comparable(held));
        assert_eq!(
            loaded
                .history()
                .all()
                .map(|e| e.revision)
                .collect::<Vec<_>>(),
            held.history().all().map(|e| e.revision).collect::<Vec<_>>()
        );
    }

    #[test]
    fn changes_made_while_a_snapshot_is_sliced_come_back_exactly_once() {
        let (dir, held, told) = snapshot_with_changes(false);
        assert_eq!(told, Ok(()));
        assert_eq!(files(dir.path()), ["log.1", "snapshot.json"]);
        let mut loaded = State::new(100, 1_000_000);
        let (seq, valid) = load(dir.path(), &mut loaded).unwrap();
        assert_eq!(seq, 1);
        assert!(valid > 0, "the changes went to the new log");
        let held = held.lock();
        assert_same(&loaded, &held);
        let i5 = loaded.get("svc", "i5", NOW).unwrap();
        assert_eq!(i5.deregister_reason.as_deref(), Some("bye"));
        assert!(loaded.get("svc", "i2400", NOW).is_none(), "purged");
        assert_eq!(loaded.get("svc", "i7", NOW).unwrap().heartbeat_revision, 2);
    }

    #[test]
    fn a_snapshot_cut_short_loses_nothing_and_the_logs_chain() {
        let (dir, held, told) = snapshot_with_changes(true);
        assert!(told.unwrap_err().contains("not written"));
        assert_eq!(files(dir.path()), ["log.0", "log.1"]);
        let mut loaded = State::new(100, 1_000_000);
        let (seq, _) = load(dir.path(), &mut loaded).unwrap();
        assert_eq!(seq, 1, "appends continue in the newest log");
        assert_same(&loaded, &held.lock());
    }
}
