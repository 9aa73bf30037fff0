//! Tail checkpoints: per file identity (device + inode + a fingerprint of
//! its first bytes) and the offset up to which its lines are durably in the
//! disk buffer. Written atomically (tmp + fsync + rename) to
//! `<state-dir>/tail-checkpoints.json` after the buffer append they follow.

use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bytes hashed to tell a file from another that reuses its inode.
pub const FINGERPRINT_BYTES: u64 = 256;

/// A file's identity on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A fingerprint of a file's first bytes (`len` = how many were hashed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u64,
    pub crc: u32,
}

impl Fingerprint {
    /// Hash the first `min(size, FINGERPRINT_BYTES)` bytes of `file`.
    pub fn read(file: &std::fs::File, size: u64) -> std::io::Result<Self> {
        let len = size.min(FINGERPRINT_BYTES);
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, 0)?;
        Ok(Fingerprint {
            len,
            crc: crc32c::crc32c(&buf),
        })
    }

    /// Whether `file` starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &std::fs::File, size: u64) -> bool {
        if size < self.len {
            return false;
        }
        let mut buf = vec![0u8; self.len as usize];
        file.read_exact_at(&mut buf, 0).is_ok() && crc32c::crc32c(&buf) == self.crc
    }
}

/// One file's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub id: FileId,
    pub offset: u64,
    pub fingerprint: Fingerprint,
}

/// The checkpoint file.
pub struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    pub fn new(state_dir: &Path) -> Self {
        CheckpointFile {
            path: state_dir.join("tail-checkpoints.json"),
        }
    }

    pub fn load(&self) -> std::io::Result<Vec<Checkpoint>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, cps: &[Checkpoint]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(cps).map_err(std::io::Error::other)?)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &self.path)
    }
}
