//! Segment files and frame encoding of the disk buffer.
//!
//! A segment is named by the logical byte offset of its first frame
//! (`00000000000000001234.seg`); segments follow each other without gaps, so
//! offsets are global and never repeat. A frame is
//! `len u32 | crc32c u32 | kind u8 | items u32 | payload`, the CRC covering
//! kind, items and payload. Frames never span segments. Owns only file
//! naming, framing and scanning; no accounting, no threads.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bytes before the payload.
pub const HEADER: u64 = 13;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Traces = 1,
    Logs = 2,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Traces),
            2 => Some(Kind::Logs),
            _ => None,
        }
    }

    pub fn as_label(self) -> &'static str {
        match self {
            Kind::Traces => "traces",
            Kind::Logs => "logs",
        }
    }
}

/// Encode one frame.
pub fn encode(kind: Kind, items: u32, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 4 GiB"))?;
    let mut crc = crc32c::crc32c(&[kind as u8]);
    crc = crc32c::crc32c_append(crc, &items.to_le_bytes());
    crc = crc32c::crc32c_append(crc, payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&items.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A decoded frame.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub kind: Kind,
    pub items: u32,
    pub payload: Vec<u8>,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the frame needs (a torn tail, or not written yet).
    #[error("truncated frame")]
    Truncated,
    #[error("corrupt frame: {0}")]
    Corrupt(&'static str),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Read one frame from `r`; `max_len` bounds the payload allocation.
pub fn read_frame(r: &mut impl Read, max_len: u64) -> Result<Frame, FrameError> {
    let mut header = [0u8; HEADER as usize];
    read_exact(r, &mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = Kind::from_byte(header[8]).ok_or(FrameError::Corrupt("unknown kind"))?;
    let items = u32::from_le_bytes([header[9], header[10], header[11], header[12]]);
    if u64::from(len) > max_len {
        return Err(FrameError::Corrupt("length beyond the segment"));
    }
    let mut payload = vec![0u8; len as usize];
    read_exact(r, &mut payload)?;
    let mut want = crc32c::crc32c(&header[8..13]);
    want = crc32c::crc32c_append(want, &payload);
    if want != crc {
        return Err(FrameError::Corrupt("checksum mismatch"));
    }
    Ok(Frame {
        kind,
        items,
        payload,
    })
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), FrameError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })
}

/// `dir/<base>.seg`.
pub fn path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// Base offsets of the segment files in `dir`, ascending.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".seg") {
            if let Ok(base) = stem.parse::<u64>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Length of the valid prefix of a segment: every frame whose CRC checks.
/// Returns `(valid_len, file_len)`.
pub fn scan(path: &Path) -> io::Result<(u64, u64)> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = io::BufReader::with_capacity(1 << 16, file);
    let mut valid = 0u64;
    loop {
        match read_frame(&mut r, file_len.saturating_sub(valid)) {
            Ok(f) => valid += HEADER + f.payload.len() as u64,
            Err(FrameError::Io(e)) => return Err(e),
            Err(_) => return Ok((valid, file_len)),
        }
    }
}

/// fsync a directory so that created, renamed or removed entries are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_corruption() {
        let mut buf = Vec::new();
        encode(Kind::Logs, 3, b"hello", &mut buf).unwrap();
        encode(Kind::Traces, 1, b"", &mut buf).unwrap();
        let mut r = &buf[..];
        let f = read_frame(&mut r, 100).unwrap();
        assert_eq!(
            (f.kind, f.items, &f.payload[..]),
            (Kind::Logs, 3, &b"hello"[..])
        );
        let f = read_frame(&mut r, 100).unwrap();
        assert_eq!((f.kind, f.items, f.payload.len()), (Kind::Traces, 1, 0));
        assert!(matches!(
            read_frame(&mut r, 100),
            Err(FrameError::Truncated)
        ));

        let mut bad = buf.clone();
        bad[15] ^= 1;
        assert!(matches!(
            read_frame(&mut &bad[..], 100),
            Err(FrameError::Corrupt(_))
        ));
        assert!(matches!(
            read_frame(&mut &buf[..10], 100),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn scan_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), 0);
        let mut buf = Vec::new();
        encode(Kind::Logs, 1, b"one", &mut buf).unwrap();
        let good = buf.len() as u64;
        encode(Kind::Logs, 1, b"two-two", &mut buf).unwrap();
        buf.truncate(buf.len() - 2);
        std::fs::write(&p, &buf).unwrap();
        assert_eq!(scan(&p).unwrap(), (good, buf.len() as u64));
        assert_eq!(list(dir.path()).unwrap(), vec![0]);
    }
}
