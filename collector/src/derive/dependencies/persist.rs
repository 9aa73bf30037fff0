//! The dependency graph on disk: one JSON file per hour,
//! `<data-dir>/derived/dependencies/<unix-hour>.json`, holding that hour's
//! minute buckets and the WAL position they cover. A file is replaced
//! atomically (write a temporary file, fsync, rename, fsync the directory),
//! so a crash leaves the old or the new version, never a mix.
//!
//! A file that cannot be read or parsed is logged, renamed to `*.bad` and
//! skipped: the graph loses that hour rather than refusing to start.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::pairing::ConnType;
use super::sketch::Sketch;
use super::store::{EdgeKey, EdgeStats, Hour, Minutes, Store};
use super::DependencyError;
use crate::index::Lsn;

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct HourFile {
    version: u32,
    /// Every WAL record at or below this is counted in the file.
    lsn: Lsn,
    minutes: Vec<MinuteRow>,
}

#[derive(Serialize, Deserialize)]
struct MinuteRow {
    minute: u64,
    edges: Vec<EdgeRow>,
}

#[derive(Serialize, Deserialize)]
struct EdgeRow {
    parent: String,
    child: String,
    connection_type: String,
    calls: u64,
    errors: u64,
    latency: Sketch,
}

fn file_of(dir: &Path, hour: Hour) -> PathBuf {
    dir.join(format!("{hour}.json"))
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DependencyError {
    move |source| DependencyError::Io { context, source }
}

/// Load every hour file of `dir` (created if missing) into `store`, skipping
/// hours before `oldest_hour` (deleted).
pub fn load(dir: &Path, oldest_hour: Hour, store: &mut Store) -> Result<(), DependencyError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let entries = std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))?;
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let mut intern = |s: String| -> Arc<str> {
        names
            .entry(s)
            .or_insert_with_key(|k| Arc::from(k.as_str()))
            .clone()
    };
    for entry in entries {
        let path = entry
            .map_err(io(format!("listing {}", dir.display())))?
            .path();
        let Some(hour) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|h| h.parse::<Hour>().ok())
        else {
            continue;
        };
        if hour < oldest_hour {
            remove(&path)?;
            continue;
        }
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<HourFile>(&b).map_err(|e| e.to_string()))
            .and_then(|f| match f.version {
                VERSION => Ok(f),
                v => Err(format!("unknown version {v}")),
            });
        let file = match parsed {
            Ok(f) => f,
            Err(why) => {
                tracing::warn!(file = %path.display(), error = %why, "unreadable dependency-graph file set aside");
                let _ = std::fs::rename(&path, path.with_extension("bad"));
                continue;
            }
        };
        let mut minutes = Minutes::new();
        for row in file.minutes {
            let edges = minutes.entry(row.minute).or_default();
            for e in row.edges {
                let Some(conn) = ConnType::from_label(&e.connection_type) else {
                    continue;
                };
                let mut latency = e.latency;
                latency.sanitize();
                let key = EdgeKey {
                    parent: intern(e.parent),
                    child: intern(e.child),
                    conn,
                };
                edges.insert(
                    key,
                    EdgeStats {
                        calls: e.calls,
                        errors: e.errors,
                        latency,
                    },
                );
            }
        }
        store.load_hour(hour, file.lsn, minutes);
    }
    Ok(())
}

/// Write `hour` of `store` as covering everything up to `lsn`.
pub fn save_hour(dir: &Path, store: &Store, hour: Hour, lsn: Lsn) -> Result<(), DependencyError> {
    let minutes = store
        .hour_minutes(hour)
        .map(|(&minute, edges)| {
            let mut edges: Vec<EdgeRow> = edges
                .iter()
                .map(|(k, s)| EdgeRow {
                    parent: k.parent.to_string(),
                    child: k.child.to_string(),
                    connection_type: k.conn.label().to_string(),
                    calls: s.calls,
                    errors: s.errors,
                    latency: s.latency.clone(),
                })
                .collect();
            edges.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
            MinuteRow { minute, edges }
        })
        .collect();
    let file = HourFile {
        version: VERSION,
        lsn,
        minutes,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| DependencyError::Encode(e.to_string()))?;
    let path = file_of(dir, hour);
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_data())
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io(format!("renaming {}", tmp.display())))?;
    sync_dir(dir)
}

/// Delete the file of `hour` (gone past retention).
pub fn remove_hour(dir: &Path, hour: Hour) -> Result<(), DependencyError> {
    remove(&file_of(dir, hour))?;
    sync_dir(dir)
}

fn remove(path: &Path) -> Result<(), DependencyError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), DependencyError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("fsync {}", dir.display())))
}
