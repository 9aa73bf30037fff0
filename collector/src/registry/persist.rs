//! Durability of the registry in `<data dir>/registry/`: a snapshot file
//! (`snapshot.json`, written to a temporary name, fsynced, renamed) plus an
//! append-only log of the changes since (`log.<seq>`), replayed at start.
//!
//! Log framing: `u32 length LE | u32 CRC32C LE | JSON record`. A torn or
//! corrupt tail (crash mid-write) is cut at the last good record. One writer
//! thread owns the files and batches appends (group commit): membership
//! changes are fsynced before their caller is answered; renewals are written
//! without waiting (`write(2)` survives SIGKILL; only an OS crash can lose
//! the last renewals, which at worst lowers the stale-heartbeat floor). When
//! the log passes [`ROTATE_BYTES`] the registry hands the writer a snapshot:
//! it is written, the next log starts, the old one is deleted.
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

#[derive(Serialize)]
struct SnapshotOut<'a> {
    format: u32,
    revision: u64,
    restarts_total: u64,
    etcd_revision: i64,
    log_seq: u64,
    instances: &'a [InstanceView],
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

/// State handed to the writer for a snapshot.
pub struct SnapshotData {
    pub revision: u64,
    pub restarts_total: u64,
    pub etcd_revision: i64,
    pub instances: Vec<InstanceView>,
    pub events: Vec<SharedEvent>,
}

impl SnapshotData {
    pub fn of(state: &State, now: u64) -> Self {
        SnapshotData {
            revision: state.revision(),
            restarts_total: state.restarts_total(),
            etcd_revision: state.etcd_revision,
            instances: state.snapshot(now),
            events: state.history().all().cloned().collect(),
        }
    }
}

/// A durability acknowledgement.
pub type Ack = oneshot::Sender<Result<(), String>>;

pub enum Msg {
    Append {
        bytes: Vec<u8>,
        sync: bool,
        done: Option<Ack>,
    },
    Rotate(Box<SnapshotData>),
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
    let log_path = log_path(dir, seq);
    let valid = replay(&log_path, state)?;
    // Logs of other sequences are leftovers of an interrupted rotation.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("log.") && entry.path() != log_path {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok((seq, valid))
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
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut acks: Vec<Ack> = Vec::new();
        while let Some(first) = rx.blocking_recv() {
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
                    Msg::Rotate(snap) => {
                        if result.is_ok() {
                            result = self.commit(true);
                        }
                        answer(&mut acks, &result);
                        sync = false;
                        if let Err(e) = self.rotate(&snap) {
                            tracing::error!("registry snapshot failed: {e}");
                            self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        drop(snap);
                        release_free_memory();
                        self.stats.rotating.store(false, Ordering::Relaxed);
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
        let _ = self.commit(true);
    }

    fn commit(&mut self, sync: bool) -> Result<(), String> {
        self.file.flush().map_err(|e| e.to_string())?;
        if sync {
            self.file.get_ref().sync_data().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn rotate(&mut self, snap: &SnapshotData) -> Result<(), PersistError> {
        let next = self.seq + 1;
        let tmp = self.dir.join("snapshot.json.tmp");
        {
            let f = File::create(&tmp).map_err(io(&tmp))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let out = SnapshotOut {
                format: FORMAT,
                revision: snap.revision,
                restarts_total: snap.restarts_total,
                etcd_revision: snap.etcd_revision,
                log_seq: next,
                instances: &snap.instances,
                events: snap.events.iter().map(|e| e.as_ref()).collect(),
            };
            serde_json::to_writer(&mut w, &out).map_err(|e| PersistError::Snapshot {
                path: tmp.display().to_string(),
                message: e.to_string(),
            })?;
            w.flush().map_err(io(&tmp))?;
            w.get_ref().sync_all().map_err(io(&tmp))?;
        }
        let new_log = log_path(&self.dir, next);
        let file = open_append(&new_log)?;
        file.get_ref().sync_all().map_err(io(&new_log))?;
        let snap_path = self.dir.join(SNAPSHOT);
        std::fs::rename(&tmp, &snap_path).map_err(io(&snap_path))?;
        sync_dir(&self.dir);
        let old = log_path(&self.dir, self.seq);
        self.file = file;
        self.seq = next;
        self.stats.log_bytes.store(0, Ordering::Relaxed);
        let _ = std::fs::remove_file(old);
        tracing::info!(
            revision = snap.revision,
            instances = snap.instances.len(),
            "registry snapshot written"
        );
        Ok(())
    }
}

/// Hand the snapshot's freed memory back to the OS. A snapshot copies every
/// instance (~400 B each, 40 MB at 100k) for a moment; the allocator keeps
/// such freed pages as "dirty" and lets them decay over seconds, during
/// which they count as resident. This purges them now, on the writer
/// thread, once per snapshot. The binary's allocator is jemalloc (see
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
