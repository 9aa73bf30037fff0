//! Resolved (and withdrawn) alerts, newest last, for
//! `GET /api/v1/alerts/history`. Bounded: the newest [`MAX_HISTORY`] entries
//! are kept in memory and appended to `alerts/history.jsonl` in the data dir;
//! the file is compacted to the in-memory entries when it grows past twice
//! that.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::labels::Labels;

/// Entries kept.
pub const MAX_HISTORY: usize = 10_000;

/// One finished alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub name: String,
    /// `resolved`, or `withdrawn` (held by a mass expiry, rule removed).
    pub state: String,
    /// Shared with the alert it records.
    pub labels: Arc<Labels>,
    pub annotations: Arc<Labels>,
    pub value: f64,
    pub active_at_ms: u64,
    pub fired_at_ms: Option<u64>,
    pub resolved_at_ms: u64,
    pub fingerprint: String,
}

/// The history, in memory and on disk.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    entries: VecDeque<HistoryEntry>,
    lines_on_disk: usize,
}

impl History {
    /// Load the newest entries from `path` (a missing file is empty; bad
    /// lines, e.g. a torn last line, are skipped with a warning).
    pub fn open(path: PathBuf) -> std::io::Result<History> {
        let mut entries = VecDeque::new();
        let mut lines_on_disk = 0;
        match std::fs::File::open(&path) {
            Ok(f) => {
                for line in std::io::BufReader::new(f).lines() {
                    let line = line?;
                    lines_on_disk += 1;
                    match serde_json::from_str::<HistoryEntry>(&line) {
                        Ok(e) => {
                            if entries.len() == MAX_HISTORY {
                                entries.pop_front();
                            }
                            entries.push_back(e);
                        }
                        Err(e) => tracing::warn!("skipping a bad line in {}: {e}", path.display()),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(History {
            path,
            entries,
            lines_on_disk,
        })
    }

    /// Record one entry (memory and disk; a disk error is logged, the entry kept in memory).
    pub fn push(&mut self, entry: HistoryEntry) {
        if let Err(e) = self.append(&entry) {
            tracing::warn!("writing alert history to {}: {e}", self.path.display());
        }
        if self.entries.len() == MAX_HISTORY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        if self.lines_on_disk > 2 * MAX_HISTORY {
            if let Err(e) = self.compact() {
                tracing::warn!("compacting alert history {}: {e}", self.path.display());
            }
        }
    }

    fn append(&mut self, entry: &HistoryEntry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        self.lines_on_disk += 1;
        Ok(())
    }

    fn compact(&mut self) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for e in &self.entries {
            bytes.extend(serde_json::to_vec(e).map_err(std::io::Error::other)?);
            bytes.push(b'\n');
        }
        super::persist::write_atomic(&self.path, &bytes)?;
        self.lines_on_disk = self.entries.len();
        Ok(())
    }

    /// Entries whose active time overlaps `[start_ms, end_ms]`, newest first.
    pub fn between(&self, start_ms: u64, end_ms: u64) -> Vec<HistoryEntry> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.active_at_ms <= end_ms && e.resolved_at_ms >= start_ms)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(active: u64, resolved: u64) -> HistoryEntry {
        HistoryEntry {
            name: "X".into(),
            state: "resolved".into(),
            labels: Arc::default(),
            annotations: Arc::default(),
            value: 1.0,
            active_at_ms: active,
            fired_at_ms: Some(active),
            resolved_at_ms: resolved,
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn overlapping_entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut h = History::open(path.clone()).unwrap();
        h.push(entry(0, 10));
        h.push(entry(20, 30));
        h.push(entry(40, 50));
        let h = History::open(path).unwrap();
        let got: Vec<u64> = h.between(25, 45).iter().map(|e| e.active_at_ms).collect();
        assert_eq!(got, vec![40, 20]);
        assert_eq!(h.between(0, u64::MAX).len(), 3);
    }
}
