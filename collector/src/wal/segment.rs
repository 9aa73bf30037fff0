//! Segment files: naming, header, listing, the per-segment scan used at open,
//! and the directory lock.
//!
//! A segment is `<base LSN, 20 digits>.wal`: a 24-byte header followed by
//! frames. Header: `SKWAL001` magic, base LSN (u64 LE, must match the file
//! name), `prev_end` (u64 LE): the LSN where the previous segment's records
//! end. Normally `prev_end == base`; after a repair that cut damaged data the
//! next segment starts higher (`prev_end < base`) so no LSN is ever reused
//! (the indexer skips LSNs it has committed). LSNs count frame bytes only: the
//! frame at file offset `o` of segment `b` starts at LSN `b + o - HEADER`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{self, FrameError};
use super::{Lsn, WalError};

pub const MAGIC: [u8; 8] = *b"SKWAL001";
pub const HEADER: u64 = 24;
const LOCK_FILE: &str = "LOCK";

/// A segment known to the log.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    pub base: Lsn,
    /// LSN where the previous segment's records end (`<= base`).
    pub prev_end: Lsn,
    pub path: PathBuf,
}

pub fn path_for(dir: &Path, base: Lsn) -> PathBuf {
    dir.join(format!("{base:020}.wal"))
}

/// File offset of `lsn` in the segment starting at `base`.
pub fn offset_of(base: Lsn, lsn: Lsn) -> u64 {
    HEADER + (lsn - base)
}

pub fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> WalError {
    let context = context.into();
    move |source| WalError::Io { context, source }
}

/// ENOSPC or EDQUOT: the caller may retry once space is back.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Map a write-path error: disk full is its own kind, the rest keep context.
pub fn write_err(context: &str, e: io::Error) -> WalError {
    if is_disk_full(&e) {
        WalError::DiskFull
    } else {
        WalError::Io {
            context: context.to_string(),
            source: e,
        }
    }
}

/// Segment files in the directory by base LSN (from the name), sorted.
pub fn list(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))? {
        let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let Ok(base) = stem.parse::<Lsn>() {
            out.push((base, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Create an empty segment: header written and fsynced, directory fsynced.
/// On failure the partial file is removed (best effort).
pub fn create(dir: &Path, base: Lsn, prev_end: Lsn) -> Result<SegmentInfo, WalError> {
    let path = path_for(dir, base);
    let mut header = Vec::with_capacity(HEADER as usize);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&base.to_le_bytes());
    header.extend_from_slice(&prev_end.to_le_bytes());
    let written = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&header)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return Err(write_err(&format!("creating {}", path.display()), e));
    }
    sync_dir(dir)?;
    Ok(SegmentInfo {
        base,
        prev_end,
        path,
    })
}

/// Remove a file; one that is already gone is fine.
pub fn remove(path: &Path) -> Result<(), WalError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(WalError::Io {
            context: format!("removing {}", path.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("fsync directory {}", dir.display())))
}

/// Cut a file to `len` and make that durable.
pub fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(io_err(format!(
            "truncating {} to {len} bytes",
            path.display()
        )))
}

/// The header's `prev_end`, or `None` when the header is short or wrong
/// (including a base that does not match the file name).
pub fn read_header(path: &Path, base: Lsn) -> Result<Option<Lsn>, WalError> {
    let mut file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let mut h = [0u8; HEADER as usize];
    let got = record::read_full(&mut file, &mut h).map_err(|e| match e {
        FrameError::Io(source) => WalError::Io {
            context: format!("reading {}", path.display()),
            source,
        },
        other => WalError::Corrupt(format!("{other:?}")),
    })?;
    if got < h.len() || h[..8] != MAGIC {
        return Ok(None);
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&h[8..16]);
    let stored_base = u64::from_le_bytes(word);
    word.copy_from_slice(&h[16..24]);
    let prev_end = u64::from_le_bytes(word);
    Ok((stored_base == base && prev_end <= base).then_some(prev_end))
}

/// Where a scan of one segment stopped.
pub struct ScanEnd {
    /// File offset just past the last good frame.
    pub good_offset: u64,
    pub file_len: u64,
    /// Why it stopped before `limit` / the end of the file, if it did.
    pub damage: Option<String>,
    /// The largest frame boundary at or below the `snap` offset asked for.
    pub snapped: u64,
}

/// Validate the frames of a segment (header already checked). `limit` is the
/// offset where the segment must end (from the next segment's `prev_end`);
/// the last segment has none and is read to the end of the file.
pub fn scan(path: &Path, limit: Option<u64>, snap: u64) -> Result<ScanEnd, WalError> {
    let read_err = |e| WalError::Io {
        context: format!("reading {}", path.display()),
        source: e,
    };
    let mut file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let file_len = file.metadata().map_err(read_err)?.len();
    file.seek(SeekFrom::Start(HEADER)).map_err(read_err)?;
    let end = limit.unwrap_or(u64::MAX).min(file_len).max(HEADER);
    let mut r = BufReader::with_capacity(1 << 20, file).take(end - HEADER);
    let mut payload = Vec::new();
    let mut offset = HEADER;
    let mut snapped = HEADER;
    let damage = loop {
        match record::read_frame(&mut r, end - offset, &mut payload) {
            Ok(_) => {
                offset += record::framed_len(payload.len());
                if offset <= snap {
                    snapped = offset;
                }
            }
            Err(FrameError::End) => match limit {
                Some(l) if offset < l => {
                    break Some(format!(
                        "segment ends at offset {offset}, before the next segment's start ({l})"
                    ))
                }
                _ => break None,
            },
            Err(FrameError::Truncated) => break Some("record cut short".to_string()),
            Err(FrameError::Corrupt(why)) => break Some(why),
            Err(FrameError::Io(e)) => return Err(read_err(e)),
        }
    };
    Ok(ScanEnd {
        good_offset: offset,
        file_len,
        damage,
        snapped,
    })
}

/// Take an exclusive `flock` on `<dir>/LOCK` so two processes never write one
/// log (the pipeline also locks the whole data directory with it). Released
/// when the returned file is dropped.
pub fn lock_dir(dir: &Path) -> Result<File, WalError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: `flock` on a descriptor this function owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        let context = if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!(
                "the directory {} is in use by another process or handle",
                dir.display()
            )
        } else {
            format!("locking {}", path.display())
        };
        return Err(WalError::Io { context, source: e });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let s = create(dir.path(), 4096, 1000).unwrap();
        assert_eq!(s.path, path_for(dir.path(), 4096));
        assert_eq!(file_len(&s.path), HEADER);
        assert_eq!(read_header(&s.path, 4096).unwrap(), Some(1000));
        assert_eq!(
            read_header(&s.path, 4095).unwrap(),
            None,
            "base must match the name"
        );
        truncate(&s.path, 10).unwrap();
        assert_eq!(read_header(&s.path, 4096).unwrap(), None);
        assert_eq!(list(dir.path()).unwrap(), vec![(4096, s.path.clone())]);
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path()).unwrap();
        assert!(lock_dir(dir.path()).is_err());
        drop(held);
        lock_dir(dir.path()).unwrap();
    }
}
