//! Time partitions: one tantivy index per `span_hours` of ingest time, in a
//! directory named after its first hour (`YYYYMMDDHH`, UTC).
//!
//! [`PartitionSet`] is the shared read side (a map of open partitions, each
//! with a manually reloaded reader). [`WriterSlot`] is owned by the indexer
//! thread: it holds the one `IndexWriter` of the newest partition, rolls to a
//! new partition when the hour changes and commits with the LSN payload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use tantivy::merge_policy::LogMergePolicy;
use tantivy::schema::Schema;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyError};

use super::mapped::{MappedDirectory, MappedFiles};
use super::metrics::IndexMetrics;
use super::schema::index_settings;
use super::{IndexError, Lsn, Signal};

/// Hours since the Unix epoch (UTC) of `t`; times before the epoch map to 0.
pub(crate) fn hour_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 3600)
        .unwrap_or(0)
}

/// `YYYYMMDDHH` of an epoch hour.
pub(crate) fn hour_name(hour: u64) -> String {
    let (y, m, d) = civil_from_days((hour / 24) as i64);
    format!("{y:04}{m:02}{d:02}{:02}", hour % 24)
}

/// Epoch hour of a `YYYYMMDDHH` name, `None` if it is not one.
pub(crate) fn parse_hour_name(name: &str) -> Option<u64> {
    if name.len() != 10 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = name[0..4].parse().ok()?;
    let m: u32 = name[4..6].parse().ok()?;
    let d: u32 = name[6..8].parse().ok()?;
    let h: u64 = name[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if days < 0 || civil_from_days(days) != (y, m, d) {
        return None;
    }
    Some(days as u64 * 24 + h)
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One open partition (read side).
pub(crate) struct Partition {
    /// First epoch hour covered.
    pub start_hour: u64,
    pub name: String,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
}

impl Partition {
    fn open_or_create(
        dir: &Path,
        start_hour: u64,
        schema: &Schema,
        files: &MappedFiles,
    ) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let directory = MappedDirectory::open(dir, files.clone()).map_err(TantivyError::from)?;
        let index = if dir.join("meta.json").exists() {
            let index = Index::open(directory)?;
            if index.schema() != *schema {
                return Err(IndexError::Config(format!(
                    "{}: schema differs from this version's",
                    dir.display()
                )));
            }
            index
        } else {
            Index::create(directory, schema.clone(), index_settings())?
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        check_term_dictionaries(dir, &reader.searcher(), schema)?;
        Ok(Partition {
            start_hour,
            name: hour_name(start_hour),
            dir: dir.to_path_buf(),
            index,
            reader,
        })
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The LSN stored as payload of the last commit, if any.
    pub fn payload_lsn(&self) -> Result<Option<Lsn>, IndexError> {
        let metas = self.index.load_metas()?;
        Ok(metas.payload.as_deref().and_then(|p| p.trim().parse().ok()))
    }
}

/// The partitions of one signal, newest writable, all searchable.
pub(crate) struct PartitionSet {
    pub signal: Signal,
    root: PathBuf,
    schema: Schema,
    span_hours: u64,
    parts: RwLock<BTreeMap<u64, Arc<Partition>>>,
    files: MappedFiles,
    metrics: IndexMetrics,
}

impl PartitionSet {
    /// Open every partition under `root`; returns the set and its checkpoint
    /// (largest commit payload, 0 when none).
    pub fn open(
        root: PathBuf,
        signal: Signal,
        schema: Schema,
        span_hours: u64,
        files: MappedFiles,
        metrics: IndexMetrics,
    ) -> Result<(Self, Lsn), IndexError> {
        std::fs::create_dir_all(&root).map_err(|e| IndexError::io(&root, e))?;
        let mut parts = BTreeMap::new();
        let mut checkpoint = 0;
        let entries = std::fs::read_dir(&root).map_err(|e| IndexError::io(&root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IndexError::io(&root, e))?;
            let name = entry.file_name();
            let Some(hour) = name.to_str().and_then(parse_hour_name) else {
                continue;
            };
            let dir = entry.path();
            let opened = Partition::open_or_create(&dir, hour, &schema, &files)
                .and_then(|p| p.payload_lsn().map(|lsn| (p, lsn)));
            match opened {
                Ok((part, lsn)) => {
                    checkpoint = checkpoint.max(lsn.unwrap_or(0));
                    let docs = part.searcher().num_docs();
                    metrics
                        .partition_documents
                        .with_label_values(&[signal.as_label(), &part.name])
                        .set(docs as i64);
                    parts.insert(hour, Arc::new(part));
                }
                Err(e) => quarantine(&root, &dir, signal, &e, &metrics),
            }
        }
        metrics
            .partitions
            .with_label_values(&[signal.as_label()])
            .set(parts.len() as i64);
        let set = PartitionSet {
            signal,
            root,
            schema,
            span_hours,
            parts: RwLock::new(parts),
            files,
            metrics,
        };
        Ok((set, checkpoint))
    }

    /// First epoch hour of the partition that holds documents ingested at `now`.
    pub fn partition_start(&self, now: SystemTime) -> u64 {
        hour_of(now) / self.span_hours * self.span_hours
    }

    /// All partitions, newest first.
    pub fn snapshot(&self) -> Vec<Arc<Partition>> {
        self.parts.read().values().rev().cloned().collect()
    }

    fn get_or_create(&self, start_hour: u64) -> Result<Arc<Partition>, IndexError> {
        if let Some(p) = self.parts.read().get(&start_hour) {
            return Ok(p.clone());
        }
        let dir = self.root.join(hour_name(start_hour));
        let part = Arc::new(Partition::open_or_create(
            &dir,
            start_hour,
            &self.schema,
            &self.files,
        )?);
        let mut parts = self.parts.write();
        parts.insert(start_hour, part.clone());
        self.metrics
            .partitions
            .with_label_values(&[self.signal.as_label()])
            .set(parts.len() as i64);
        Ok(part)
    }

    /// Whether the partition starting at `start_hour` ended at or before `cutoff`.
    pub fn ended_before(&self, start_hour: u64, cutoff: SystemTime) -> bool {
        (start_hour + self.span_hours) <= hour_of(cutoff)
    }

    /// Delete partitions whose time span ended at or before `cutoff`, except
    /// `keep` (the one being written). Returns the names dropped.
    pub fn drop_ended_before(&self, cutoff: SystemTime, keep: Option<u64>) -> Vec<String> {
        let expired: Vec<Arc<Partition>> = {
            let mut parts = self.parts.write();
            let hours: Vec<u64> = parts
                .keys()
                .copied()
                .filter(|h| self.ended_before(*h, cutoff) && Some(*h) != keep)
                .collect();
            hours.iter().filter_map(|h| parts.remove(h)).collect()
        };
        let label = self.signal.as_label();
        let mut dropped = Vec::new();
        for part in expired {
            let dir = part.dir.clone();
            let name = part.name.clone();
            // Searches still holding the partition keep their mmaps (unlinked files stay readable).
            drop(part);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(signal = label, partition = %name, "retention: partition deleted");
                }
                Err(e) => {
                    tracing::warn!(signal = label, partition = %name, error = %e, "retention: could not delete partition");
                }
            }
            let _ = self
                .metrics
                .partition_documents
                .remove_label_values(&[label, &name]);
            self.metrics
                .partitions_dropped
                .with_label_values(&[label])
                .inc();
            dropped.push(name);
        }
        self.metrics
            .partitions
            .with_label_values(&[label])
            .set(self.parts.read().len() as i64);
        dropped
    }
}

/// Open every indexed field's term dictionary of every segment, so that a
/// partition this build cannot read is refused here (and quarantined by the
/// caller) rather than failing a query or the catalog later. Partitions
/// written before the switch to SSTable term dictionaries are the expected
/// case, and get a message that says so.
fn check_term_dictionaries(
    dir: &Path,
    searcher: &Searcher,
    schema: &Schema,
) -> Result<(), IndexError> {
    for seg in searcher.segment_readers() {
        for (field, entry) in schema.fields() {
            if !entry.is_indexed() {
                continue;
            }
            if let Err(e) = seg.inverted_index(field) {
                let text = e.to_string();
                let why = if text.contains("got Fst") {
                    "written by an earlier Skein with FST term dictionaries; this version \
                     reads SSTable ones (re-ingest the data, or read it with the earlier \
                     version)"
                        .to_string()
                } else {
                    text
                };
                return Err(IndexError::Config(format!(
                    "{}: field {}: {why}",
                    dir.display(),
                    entry.name()
                )));
            }
        }
    }
    Ok(())
}

fn quarantine(root: &Path, dir: &Path, signal: Signal, err: &IndexError, metrics: &IndexMetrics) {
    let qdir = root.join("quarantine");
    let name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let target = qdir.join(format!("{}-{stamp}", name.to_string_lossy()));
    let moved = std::fs::create_dir_all(&qdir).and_then(|()| std::fs::rename(dir, &target));
    tracing::error!(
        signal = signal.as_label(),
        partition = %dir.display(),
        error = %err,
        moved_to = %target.display(),
        moved = moved.is_ok(),
        "partition cannot be opened; moved to quarantine"
    );
    metrics
        .partitions_quarantined
        .with_label_values(&[signal.as_label()])
        .inc();
}

/// How many segments of one size tantivy's `LogMergePolicy` merges at once
/// in each signal's partitions (its default is 8).
///
/// Log documents carry the body's full-text postings with positions, and
/// rewriting them is what merges spend their time on: with 8, merges took a
/// quarter of the collector's CPU at full log ingest. Merging 16 at a time
/// rewrites each document one level less often (BENCHMARKS.md, "Ingest",
/// session 11: merge CPU −38%, CPU per log −7.5%), for up to twice as many
/// segments per level for a log search to visit.
pub(crate) const SPAN_MERGE_FAN_IN: usize = 8;
pub(crate) const LOG_MERGE_FAN_IN: usize = 16;

/// The single index writer of one signal (owned by the indexer thread).
pub(crate) struct WriterSlot {
    pub set: Arc<PartitionSet>,
    active: Option<Active>,
    memory_per_thread: usize,
    threads: usize,
    merge_fan_in: usize,
    finalizers: Vec<JoinHandle<()>>,
}

struct Active {
    part: Arc<Partition>,
    writer: IndexWriter,
}

impl WriterSlot {
    /// `merge_fan_in`: see [`LOG_MERGE_FAN_IN`].
    pub fn new(
        set: Arc<PartitionSet>,
        memory_bytes: usize,
        threads: usize,
        merge_fan_in: usize,
    ) -> Self {
        // tantivy refuses less than 15 MB per indexing thread.
        let floor = 16_000_000;
        WriterSlot {
            set,
            active: None,
            memory_per_thread: (memory_bytes / threads.max(1)).max(floor),
            threads: threads.max(1),
            merge_fan_in: merge_fan_in.max(2),
            finalizers: Vec::new(),
        }
    }

    /// Epoch hour of the partition being written, if any.
    pub fn active_hour(&self) -> Option<u64> {
        self.active.as_ref().map(|a| a.part.start_hour)
    }

    /// The writer for documents ingested at `now`. Rolls to a new partition
    /// when `now` is past the active one (committing the old one with
    /// `lsn_so_far`, the end LSN of the last complete record); a clock that
    /// goes back keeps writing to the newest partition.
    pub fn writer(&mut self, now: SystemTime, lsn_so_far: Lsn) -> Result<&IndexWriter, IndexError> {
        let start = self.set.partition_start(now);
        let roll = match &self.active {
            Some(a) => start > a.part.start_hour,
            None => true,
        };
        if roll {
            if let Some(old) = self.active.take() {
                self.finish(old, lsn_so_far)?;
            }
            let part = self.set.get_or_create(start)?;
            let writer = part
                .index
                .writer_with_num_threads(self.threads, self.memory_per_thread * self.threads)?;
            let mut policy = LogMergePolicy::default();
            policy.set_min_num_segments(self.merge_fan_in);
            writer.set_merge_policy(Box::new(policy));
            tracing::debug!(signal = self.set.signal.as_label(), partition = %part.name, "writing partition");
            self.active = Some(Active { part, writer });
        }
        match &self.active {
            Some(a) => Ok(&a.writer),
            None => Err(IndexError::Thread("no active writer".into())),
        }
    }

    /// Commit the active partition with `lsn` as payload and reload its reader.
    /// Returns false when there is no active writer.
    pub fn commit(&mut self, lsn: Lsn) -> Result<bool, IndexError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(false);
        };
        commit_active(active, lsn, &self.set)?;
        Ok(true)
    }

    fn finish(&mut self, mut old: Active, lsn: Lsn) -> Result<(), IndexError> {
        commit_active(&mut old, lsn, &self.set)?;
        // Merges may still run: let them finish off the indexing thread.
        let Active { part, writer } = old;
        let handle = std::thread::Builder::new()
            .name("skein-index-finalize".into())
            .spawn(move || {
                if let Err(e) = writer.wait_merging_threads() {
                    tracing::warn!(partition = %part.name, error = %e, "finishing partition merges failed");
                }
                if let Err(e) = part.reader.reload() {
                    tracing::warn!(partition = %part.name, error = %e, "reloading finished partition failed");
                }
            })
            .map_err(|e| IndexError::Thread(e.to_string()))?;
        self.finalizers.retain(|h| !h.is_finished());
        self.finalizers.push(handle);
        Ok(())
    }

    /// Commit and close the writer if its partition ended before `cutoff`
    /// (so retention can delete it).
    pub fn retire_if_ended(&mut self, cutoff: SystemTime, lsn: Lsn) -> Result<(), IndexError> {
        let ended = self
            .active
            .as_ref()
            .is_some_and(|a| self.set.ended_before(a.part.start_hour, cutoff));
        if ended {
            if let Some(mut old) = self.active.take() {
                commit_active(&mut old, lsn, &self.set)?;
                old.writer.wait_merging_threads()?;
            }
        }
        Ok(())
    }

    /// Wait for the writer's merges and the finalizers of rolled partitions.
    pub fn close(mut self) -> Result<(), IndexError> {
        if let Some(Active { part, writer }) = self.active.take() {
            writer.wait_merging_threads()?;
            part.reader.reload()?;
        }
        for h in self.finalizers.drain(..) {
            let _ = h.join();
        }
        Ok(())
    }
}

fn commit_active(active: &mut Active, lsn: Lsn, set: &PartitionSet) -> Result<(), IndexError> {
    let label = set.signal.as_label();
    let started = std::time::Instant::now();
    let mut prepared = active.writer.prepare_commit()?;
    prepared.set_payload(&lsn.to_string());
    prepared.commit()?;
    active.part.reader.reload()?;
    let m = &set.metrics;
    m.commits.with_label_values(&[label]).inc();
    m.commit_duration
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    m.partition_documents
        .with_label_values(&[label, &active.part.name])
        .set(active.part.searcher().num_docs() as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_names_round_trip() {
        // 2024-02-29T23:00:00Z
        let hour = 1_709_247_600 / 3600;
        assert_eq!(hour_name(hour), "2024022923");
        assert_eq!(parse_hour_name("2024022923"), Some(hour));
        assert_eq!(hour_name(0), "1970010100");
        for bad in [
            "2023022923",
            "2024130100",
            "2024010124",
            "202401010",
            "2024-01-01",
        ] {
            assert_eq!(parse_hour_name(bad), None, "{bad}");
        }
        for h in (0..500_000).step_by(7919) {
            assert_eq!(parse_hour_name(&hour_name(h)), Some(h));
        }
    }
}
