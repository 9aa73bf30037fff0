//! The checkpoint file: the LSN up to which the indexer has committed.
//!
//! 8 bytes LSN + 4 bytes CRC32C, replaced atomically (tmp, fsync, rename,
//! fsync dir) so a crash leaves either the old or the new value.

use std::io::Write;
use std::path::Path;

use super::segment::{io_err, sync_dir};
use super::{Lsn, WalError};

const FILE: &str = "checkpoint";

/// The stored checkpoint; `Ok(None)` when there is none (new log). A
/// damaged file is reported as `Err(WalError::Corrupt)`.
pub fn read(dir: &Path) -> Result<Option<Lsn>, WalError> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(WalError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            })
        }
    };
    if bytes.len() != 12 {
        return Err(WalError::Corrupt(format!(
            "{} has {} bytes, expected 12",
            path.display(),
            bytes.len()
        )));
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&bytes[..8]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[8..]);
    if crc32c::crc32c(&lsn) != u32::from_le_bytes(crc) {
        return Err(WalError::Corrupt(format!(
            "{} fails its checksum",
            path.display()
        )));
    }
    Ok(Some(u64::from_le_bytes(lsn)))
}

pub fn write(dir: &Path, lsn: Lsn) -> Result<(), WalError> {
    let tmp = dir.join("checkpoint.tmp");
    let mut bytes = lsn.to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(&lsn.to_le_bytes()).to_le_bytes());
    let mut f =
        std::fs::File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    f.write_all(&bytes)
        .map_err(io_err(format!("writing {}", tmp.display())))?;
    f.sync_all()
        .map_err(io_err(format!("fsync {}", tmp.display())))?;
    std::fs::rename(&tmp, dir.join(FILE)).map_err(io_err("renaming the checkpoint"))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), 12345).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(12345));
        let p = dir.path().join(FILE);
        let mut b = std::fs::read(&p).unwrap();
        b[0] ^= 1;
        std::fs::write(&p, b).unwrap();
        assert!(matches!(read(dir.path()), Err(WalError::Corrupt(_))));
    }
}
