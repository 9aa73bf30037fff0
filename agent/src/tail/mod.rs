//! File tailing: `--tail GLOB` files become OTLP log records in the disk
//! buffer.
//!
//! Every `--tail-poll-interval` the [`Tailer`] expands the globs, follows
//! new files from their start, notices rotation by rename (the path leads to
//! a new inode: the old one is drained to its end through the still-open
//! handle, then dropped) and by copy-truncate (the file shrank: start over),
//! and reads complete lines ([`file`]), parsed by [`parse`]. Lines are
//! appended to the buffer first and only then is the checkpoint (device,
//! inode, fingerprint, offset; [`checkpoint`]) advanced and fsynced, so a
//! restart neither loses nor repeats lines. On start, a checkpointed inode
//! no longer at its path is looked for in the same directory (rotated while
//! the agent was down) and drained. Owns the checkpoint file; reads the
//! tailed files, never writes them.

pub mod checkpoint;
pub mod file;
pub mod metrics;
pub mod parse;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use regex::Regex;
use tokio_util::sync::CancellationToken;

use crate::admin::status::{AgentStatus, TailStatus};
use crate::buffer::{Buffer, BufferError, Kind};
use crate::receive::enrich::{string_kv, Enricher};
use checkpoint::{Checkpoint, CheckpointFile, FileId};
use file::{Follower, Line};
pub use metrics::TailMetrics;

/// Most files followed at once; further matches are ignored (logged once).
pub const MAX_FILES: usize = 1024;

/// What to tail and how.
#[derive(Debug, Clone)]
pub struct TailSettings {
    pub globs: Vec<String>,
    pub multiline: Option<Regex>,
    pub poll: Duration,
    /// `service.name` of the records.
    pub service: String,
}

/// The tailer task.
pub struct Tailer {
    settings: TailSettings,
    buffer: Buffer,
    enricher: Arc<Enricher>,
    metrics: TailMetrics,
    status: Arc<AgentStatus>,
    checkpoints: CheckpointFile,
    followers: Vec<Follower>,
    /// Checkpoints from the last run not yet matched to a file.
    saved: HashMap<FileId, Checkpoint>,
    last_saved: Vec<Checkpoint>,
    /// Observed timestamps are strictly increasing, so stores that sort by
    /// time keep the read order.
    last_ns: u64,
    over_limit_logged: bool,
}

impl Tailer {
    pub fn new(
        settings: TailSettings,
        state_dir: &Path,
        buffer: Buffer,
        enricher: Arc<Enricher>,
        metrics: TailMetrics,
        status: Arc<AgentStatus>,
    ) -> std::io::Result<Self> {
        let checkpoints = CheckpointFile::new(state_dir);
        let saved: HashMap<FileId, Checkpoint> =
            checkpoints.load()?.into_iter().map(|c| (c.id, c)).collect();
        let mut t = Tailer {
            settings,
            buffer,
            enricher,
            metrics,
            status,
            checkpoints,
            followers: Vec::new(),
            saved,
            last_saved: Vec::new(),
            last_ns: 0,
            over_limit_logged: false,
        };
        t.discover();
        t.resume_rotated();
        Ok(t)
    }

    /// Poll until `cancel`; the last poll's lines are committed before return.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = cancel.cancelled() => break,
            }
        }
        self.save();
    }

    /// One cycle: discover, read, buffer, checkpoint.
    pub async fn poll_once(&mut self) {
        self.discover();
        // Drain rotated-away files first: their lines came before the new file's.
        self.followers.sort_by_key(|f| !f.detached);
        let mut i = 0;
        while i < self.followers.len() {
            match self.poll_follower(i).await {
                Ok(true) => {
                    let f = self.followers.remove(i);
                    let _ = self
                        .metrics
                        .lag_bytes
                        .remove_label_values(&[&f.path.to_string_lossy()]);
                    tracing::debug!(file = %f.path.display(), "rotated file drained");
                }
                Ok(false) => i += 1,
                Err(stop) => {
                    self.metrics.stalled.with_label_values(&[stop]).inc();
                    break;
                }
            }
        }
        self.save();
        self.publish();
    }

    /// Returns `Ok(true)` when a detached follower is drained and can go.
    async fn poll_follower(&mut self, i: usize) -> Result<bool, &'static str> {
        let f = &mut self.followers[i];
        let polled = match f.poll(self.settings.multiline.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(file = %f.path.display(), "reading a tailed file: {e}");
                return Ok(f.detached);
            }
        };
        if polled.truncated {
            self.metrics
                .rotations
                .with_label_values(&["truncate"])
                .inc();
            tracing::info!(file = %f.path.display(), "tailed file truncated (copy-truncate rotation)");
        }
        if polled.lines.is_empty() {
            return Ok(f.detached && polled.idle);
        }
        let path = f.path.clone();
        let end = polled.lines.last().map_or(0, |l| l.end);
        let n = polled.lines.len();
        let payload = self.request(&path, polled.lines);
        let f = &mut self.followers[i];
        match self.buffer.append(Kind::Logs, n as u32, payload).await {
            Ok(()) => {
                f.commit(end);
                self.metrics
                    .lines
                    .with_label_values(&[&path.to_string_lossy()])
                    .inc_by(n as u64);
                Ok(false)
            }
            Err(e) => {
                f.rewind();
                match e {
                    BufferError::Full { .. } => {
                        tracing::debug!("disk buffer full; tailing waits");
                        Err("buffer_full")
                    }
                    other => {
                        tracing::error!("buffering tailed lines: {other}");
                        Err("error")
                    }
                }
            }
        }
    }

    fn request(&mut self, path: &Path, lines: Vec<Line>) -> Vec<u8> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let file_path = path.to_string_lossy().into_owned();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let records = lines
            .into_iter()
            .map(|l| {
                self.last_ns = now.max(self.last_ns + 1);
                let mut rec = parse::parse_line(&l.text, self.last_ns);
                rec.attributes.push(string_kv("log.file.path", &file_path));
                rec.attributes.push(string_kv("log.file.name", &file_name));
                rec
            })
            .collect();
        let mut resource = Resource {
            attributes: vec![string_kv("service.name", &self.settings.service)],
            ..Default::default()
        };
        self.enricher.resource(&mut resource);
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "skein-agent/tail".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    log_records: records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec()
    }

    /// Expand the globs: follow new files, notice renamed-away ones.
    fn discover(&mut self) {
        let mut seen: BTreeSet<FileId> = BTreeSet::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for g in &self.settings.globs {
            if let Ok(entries) = glob::glob(g) {
                paths.extend(entries.filter_map(Result::ok).filter(|p| p.is_file()));
            }
        }
        paths.sort();
        paths.dedup();
        for path in paths {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let id = FileId::of(&meta);
            seen.insert(id);
            if let Some(f) = self.followers.iter_mut().find(|f| f.id == id) {
                if f.path != path && !f.detached {
                    f.path = path;
                }
                continue;
            }
            if self.followers.len() >= MAX_FILES {
                if !self.over_limit_logged {
                    tracing::warn!("more than {MAX_FILES} tailed files; ignoring the rest");
                    self.over_limit_logged = true;
                }
                continue;
            }
            let offset = match self.saved.remove(&id) {
                Some(cp) if Follower::same_content(&cp, &file, meta.len()) => cp.offset,
                _ => 0,
            };
            match Follower::new(path.clone(), file, id, offset) {
                Ok(f) => {
                    tracing::info!(file = %path.display(), offset, "tailing");
                    self.followers.push(f);
                }
                Err(e) => tracing::warn!(file = %path.display(), "cannot tail: {e}"),
            }
        }
        for f in &mut self.followers {
            if f.detached {
                continue;
            }
            let here = std::fs::metadata(&f.path).map(|m| FileId::of(&m)).ok();
            if here != Some(f.id) && !seen.contains(&f.id) {
                f.detached = true;
                self.metrics.rotations.with_label_values(&["rename"]).inc();
                tracing::info!(file = %f.path.display(), "tailed file rotated away; draining it");
            }
        }
    }

    /// Checkpointed files rotated away while the agent was down: find the
    /// inode in the same directory and drain it from its offset.
    fn resume_rotated(&mut self) {
        let saved: Vec<Checkpoint> = self.saved.drain().map(|(_, c)| c).collect();
        for cp in saved {
            let Some(dir) = cp.path.parent() else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || FileId::of(&meta) != cp.id {
                    continue;
                }
                let Ok(file) = File::open(entry.path()) else {
                    break;
                };
                if !Follower::same_content(&cp, &file, meta.len()) {
                    break;
                }
                if let Ok(mut f) = Follower::new(entry.path(), file, cp.id, cp.offset) {
                    tracing::info!(
                        file = %entry.path().display(),
                        was = %cp.path.display(),
                        "draining a file rotated while the agent was down"
                    );
                    f.detached = true;
                    self.followers.push(f);
                }
                break;
            }
        }
    }

    fn save(&mut self) {
        let cps: Vec<Checkpoint> = self.followers.iter().map(Follower::checkpoint).collect();
        if cps == self.last_saved {
            return;
        }
        match self.checkpoints.save(&cps) {
            Ok(()) => self.last_saved = cps,
            Err(e) => tracing::error!("saving tail checkpoints: {e}"),
        }
    }

    fn publish(&self) {
        self.metrics.files.set(self.followers.len() as i64);
        let mut files = Vec::with_capacity(self.followers.len());
        for f in &self.followers {
            let path = f.path.to_string_lossy();
            self.metrics
                .lag_bytes
                .with_label_values(&[&path])
                .set(f.size.saturating_sub(f.offset) as i64);
            files.push(TailStatus {
                path: path.into_owned(),
                offset: f.offset,
                size: f.size,
            });
        }
        self.status.set_tail(files);
    }
}
