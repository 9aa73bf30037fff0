//! `skein-bench disk`: bytes per span on disk for a collector data dir.
//!
//! Counts the span index (`index/spans`) and the write-ahead log (`wal`),
//! the two places a span lives; the log index is listed for information.
//! The WAL shrinks once indexed segments are checkpointed, so the figure
//! depends on when it is taken: the report shows both parts.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::Serialize;

use crate::report::{bytes, Machine, Report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector's `--data-dir`.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Spans stored in it.
    #[arg(long)]
    pub spans: u64,
}

/// The `disk` report.
#[derive(Debug, Clone, Serialize)]
pub struct DiskReport {
    pub bench: &'static str,
    pub data_dir: PathBuf,
    pub spans: u64,
    pub index_spans_bytes: u64,
    pub wal_bytes: u64,
    /// Not part of the per-span figure.
    pub index_logs_bytes: u64,
    /// (`index/spans` + `wal`) / spans.
    pub bytes_per_span: f64,
    pub index_bytes_per_span: f64,
    pub machine: Machine,
}

/// Measures `data_dir`, which holds `spans` spans.
pub fn measure(data_dir: &Path, spans: u64) -> Result<DiskReport> {
    ensure!(spans > 0, "--spans must be positive");
    ensure!(
        data_dir.is_dir(),
        "{} is not a directory",
        data_dir.display()
    );
    let index_spans_bytes = dir_size(&data_dir.join("index").join("spans"))?;
    let wal_bytes = dir_size(&data_dir.join("wal"))?;
    let index_logs_bytes = dir_size(&data_dir.join("index").join("logs"))?;
    Ok(DiskReport {
        bench: "disk",
        data_dir: data_dir.to_path_buf(),
        spans,
        index_spans_bytes,
        wal_bytes,
        index_logs_bytes,
        bytes_per_span: (index_spans_bytes + wal_bytes) as f64 / spans as f64,
        index_bytes_per_span: index_spans_bytes as f64 / spans as f64,
        machine: Machine::now(),
    })
}

/// Total size of the files under `path`; 0 if it does not exist.
pub fn dir_size(path: &Path) -> Result<u64> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    };
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        let entry = entry?;
        // Files can vanish while the collector merges or truncates.
        total += dir_size(&entry.path()).unwrap_or(0);
    }
    Ok(total)
}

impl Report for DiskReport {
    fn human(&self) -> String {
        format!(
            "disk {}: {:.1} B/span ({:.1} B/span index only) for {} spans\n  index/spans {}   wal {}   (index/logs {})\n",
            self.data_dir.display(),
            self.bytes_per_span,
            self.index_bytes_per_span,
            self.spans,
            bytes(self.index_spans_bytes),
            bytes(self.wal_bytes),
            bytes(self.index_logs_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_spans_index_and_wal_only() {
        let dir = tempfile::tempdir().unwrap();
        let spans = dir.path().join("index/spans/p1");
        std::fs::create_dir_all(&spans).unwrap();
        std::fs::create_dir_all(dir.path().join("wal")).unwrap();
        std::fs::create_dir_all(dir.path().join("index/logs")).unwrap();
        std::fs::write(spans.join("a"), vec![0; 600]).unwrap();
        std::fs::write(dir.path().join("wal/0001.log"), vec![0; 400]).unwrap();
        std::fs::write(dir.path().join("index/logs/x"), vec![0; 5000]).unwrap();
        let r = measure(dir.path(), 10).unwrap();
        assert_eq!(
            (r.index_spans_bytes, r.wal_bytes, r.index_logs_bytes),
            (600, 400, 5000)
        );
        assert_eq!(r.bytes_per_span, 100.0);
        assert_eq!(dir_size(&dir.path().join("missing")).unwrap(), 0);
    }
}
