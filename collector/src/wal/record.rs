//! Record framing: `[u32 LE payload length][u32 LE CRC32C(kind ‖ payload)][u8 kind][payload]`.
//!
//! Pure encode/decode over byte slices and readers; knows nothing of files or
//! LSNs. A length is checked against [`MAX_PAYLOAD`] and against the bytes
//! that can follow it before anything is allocated, so garbage never turns
//! into a huge allocation.

use std::io::{self, Read};

use super::RecordKind;

/// Bytes before the payload.
pub const FRAME_HEADER: usize = 9;
/// Larger lengths are corruption, not records (request limits are far below);
/// `append` refuses payloads above it so the log never holds one.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// Append one framed record to `buf`. The caller has checked
/// `payload.len() <= MAX_PAYLOAD`.
pub fn encode(buf: &mut Vec<u8>, kind: RecordKind, payload: &[u8]) {
    buf.reserve(FRAME_HEADER + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&checksum(kind as u8, payload).to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(payload);
}

/// Size of a framed record.
pub fn framed_len(payload_len: usize) -> u64 {
    (FRAME_HEADER + payload_len) as u64
}

fn checksum(kind: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload)
}

/// A parsed (not yet verified) frame header.
#[derive(Debug, Clone, Copy)]
pub struct FrameHeader {
    /// Payload length, already checked against [`MAX_PAYLOAD`].
    pub len: usize,
    crc: u32,
    kind: u8,
}

/// Parse the 9 header bytes. Rejects absurd lengths and unknown kinds.
pub fn parse_header(h: &[u8; FRAME_HEADER]) -> Result<FrameHeader, String> {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len > MAX_PAYLOAD {
        return Err(format!(
            "record length {len} is over the {MAX_PAYLOAD} byte limit"
        ));
    }
    if RecordKind::from_u8(h[8]).is_none() {
        return Err(format!("unknown record kind {}", h[8]));
    }
    Ok(FrameHeader {
        len,
        crc,
        kind: h[8],
    })
}

impl FrameHeader {
    /// Check the payload against the stored CRC; returns the record kind.
    pub fn verify(&self, payload: &[u8]) -> Result<RecordKind, String> {
        let actual = checksum(self.kind, payload);
        if actual != self.crc {
            return Err(format!(
                "checksum mismatch (stored {:#010x}, computed {actual:#010x})",
                self.crc
            ));
        }
        RecordKind::from_u8(self.kind).ok_or_else(|| format!("unknown record kind {}", self.kind))
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// Clean end of data exactly at a frame boundary.
    End,
    /// The data stops inside a frame (torn write).
    Truncated,
    /// Length, kind or checksum is wrong.
    Corrupt(String),
    Io(io::Error),
}

/// Read one frame into `payload` (reused between calls). `available` is how
/// many bytes the source holds from here on; a length claiming more is a torn
/// frame and is reported without allocating.
pub fn read_frame<R: Read>(
    r: &mut R,
    available: u64,
    payload: &mut Vec<u8>,
) -> Result<RecordKind, FrameError> {
    let mut header = [0u8; FRAME_HEADER];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Err(FrameError::End);
    }
    if got < FRAME_HEADER {
        return Err(FrameError::Truncated);
    }
    let h = parse_header(&header).map_err(FrameError::Corrupt)?;
    if framed_len(h.len) > available {
        return Err(FrameError::Truncated);
    }
    payload.clear();
    payload.resize(h.len, 0);
    if read_full(r, payload)? < h.len {
        return Err(FrameError::Truncated);
    }
    h.verify(payload).map_err(FrameError::Corrupt)
}

/// Like `read_exact`, but reports how much was read instead of failing at EOF.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn read(buf: &[u8]) -> Result<(RecordKind, Vec<u8>), FrameError> {
        let mut p = Vec::new();
        let mut r = buf;
        read_frame(&mut r, buf.len() as u64, &mut p).map(|k| (k, p))
    }

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, RecordKind::Spans, b"hello");
        let first = buf.len();
        encode(&mut buf, RecordKind::Logs, b"");
        assert_eq!(buf.len() as u64, framed_len(5) + framed_len(0));
        let (k, p) = read(&buf).unwrap();
        assert_eq!((k, p.as_slice()), (RecordKind::Spans, &b"hello"[..]));
        let (k, p) = read(&buf[first..]).unwrap();
        assert_eq!((k, p.len()), (RecordKind::Logs, 0));
        assert!(matches!(read(&[]), Err(FrameError::End)));

        for cut in 1..first {
            assert!(
                matches!(read(&buf[..cut]), Err(FrameError::Truncated)),
                "cut at {cut}"
            );
        }
        for (at, value) in [(10, 0x01), (8, 9), (3, 0x7f)] {
            let mut bad = buf.clone();
            bad[at] ^= value;
            assert!(
                matches!(read(&bad), Err(FrameError::Corrupt(_))),
                "byte {at}"
            );
        }
    }

    #[test]
    fn a_length_past_the_data_is_torn_not_allocated() {
        let mut buf = Vec::new();
        encode(&mut buf, RecordKind::Spans, &[1; 100]);
        buf[0..4].copy_from_slice(&(200u32 << 20).to_le_bytes());
        assert!(matches!(read(&buf), Err(FrameError::Truncated)));
    }

    proptest! {
        #[test]
        fn frames_round_trip_and_damage_never_panics(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..10),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                encode(&mut buf, if i % 2 == 0 { RecordKind::Spans } else { RecordKind::Logs }, p);
            }
            let mut r = &buf[..];
            let mut scratch = Vec::new();
            for p in &payloads {
                let available = r.len() as u64;
                prop_assert!(read_frame(&mut r, available, &mut scratch).is_ok());
                prop_assert_eq!(&scratch, p);
            }
            let available = r.len() as u64;
            prop_assert!(matches!(read_frame(&mut r, available, &mut scratch), Err(FrameError::End)));

            // One flipped bit: decoding stops with an error somewhere, never
            // returns a wrong payload for the damaged record, never panics.
            let at = flip.index(buf.len());
            let mut bad = buf.clone();
            bad[at] ^= 0x20;
            let mut r = &bad[..];
            let mut ok = 0;
            loop {
                let available = r.len() as u64;
                if read_frame(&mut r, available, &mut scratch).is_err() {
                    break;
                }
                prop_assert_eq!(&scratch, &payloads[ok]);
                ok += 1;
            }
            prop_assert!(ok < payloads.len());
        }
    }
}
