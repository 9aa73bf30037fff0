//! The persisted heartbeat revision (`<state-dir>/heartbeat-revision`).
//!
//! A revision is written and fsynced before the heartbeat carrying it is
//! sent, so revisions only grow across agent restarts and crashes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The last revision used, kept on disk.
#[derive(Debug)]
pub struct RevisionFile {
    path: PathBuf,
    last: u64,
}

impl RevisionFile {
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        let path = state_dir.join("heartbeat-revision");
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(RevisionFile { path, last })
    }

    /// The last revision handed out.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Persist and return the next revision (at least `min`).
    pub fn next(&mut self, min: u64) -> std::io::Result<u64> {
        let rev = (self.last + 1).max(min);
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(rev.to_string().as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, &self.path)?;
        self.last = rev;
        Ok(rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_only_grow_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = RevisionFile::open(dir.path()).unwrap();
        assert_eq!(r.next(0).unwrap(), 1);
        assert_eq!(r.next(0).unwrap(), 2);
        let mut r = RevisionFile::open(dir.path()).unwrap();
        assert_eq!(r.last(), 2);
        assert_eq!(r.next(0).unwrap(), 3);
        assert_eq!(r.next(10).unwrap(), 10, "a 409 jump");
        assert_eq!(RevisionFile::open(dir.path()).unwrap().last(), 10);
    }
}
