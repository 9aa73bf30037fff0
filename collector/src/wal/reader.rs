//! The indexer's view of the log: durable records in LSN order.
//!
//! Reads with positioned reads that never go past the durable LSN the writer
//! published, so it can never see (or buffer) a half-written or failed
//! record. Moves to the next segment where that segment's header says the
//! previous one ends, jumping over an LSN gap left by a repair.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::{self, FRAME_HEADER};
use super::segment::{self, io_err};
use super::{Lsn, Shared, WalError, WalRecord};

/// Bytes read from the file per read call (more when one record is larger).
const READ_CHUNK: u64 = 1 << 20;

pub struct WalReader {
    shared: Arc<Shared>,
    /// LSN of the next record; also the LSN of `buf[head]`.
    position: Lsn,
    cursor: Option<Cursor>,
    buf: Vec<u8>,
    head: usize,
}

/// The segment being read.
struct Cursor {
    base: Lsn,
    file: File,
    /// Where this segment's records end and the next segment starts, once a
    /// next segment exists: (its `prev_end`, its base).
    next: Option<(Lsn, Lsn)>,
}

impl WalReader {
    pub(super) fn new(shared: Arc<Shared>, position: Lsn) -> Self {
        WalReader {
            shared,
            position,
            cursor: None,
            buf: Vec::new(),
            head: 0,
        }
    }

    /// LSN of the next record to return (the end LSN of the last one returned).
    pub fn position(&self) -> Lsn {
        self.position
    }

    /// Durable records past the position, up to about `max_bytes` of payload
    /// (at least one if any). Waits up to `timeout` for the first; returns
    /// empty on timeout, or at once after close when everything is read.
    pub fn next_batch(
        &mut self,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<WalRecord>, WalError> {
        let deadline = Instant::now() + timeout;
        loop {
            let durable = self.shared.wait_durable_past(self.position, deadline);
            let out = self.read_until(durable, max_bytes)?;
            if !out.is_empty() || self.shared.is_closed() || Instant::now() >= deadline {
                return Ok(out);
            }
            // Only an LSN gap was crossed: wait for real records.
        }
    }

    fn read_until(&mut self, durable: Lsn, max_bytes: usize) -> Result<Vec<WalRecord>, WalError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        if let Some(c) = self.cursor.as_mut().filter(|c| c.next.is_none()) {
            // The writer lists a new segment before publishing records in it.
            let segs = self.shared.segments.lock();
            c.next = segs
                .iter()
                .find(|s| s.base > c.base)
                .map(|s| (s.prev_end, s.base));
        }
        while self.position < durable && (out.is_empty() || bytes < max_bytes) {
            let Some(cursor) = self.cursor.as_ref() else {
                self.open_segment()?;
                continue;
            };
            let limit = match cursor.next {
                Some((end, next_base)) if self.position >= end => {
                    // End of this segment: continue at the next one's base.
                    self.position = next_base.max(self.position);
                    self.cursor = None;
                    self.buf.clear();
                    self.head = 0;
                    continue;
                }
                Some((end, _)) => end.min(durable),
                None => durable,
            };
            self.fill(FRAME_HEADER, limit)?;
            let mut h = [0u8; FRAME_HEADER];
            h.copy_from_slice(&self.buf[self.head..self.head + FRAME_HEADER]);
            let header = record::parse_header(&h).map_err(|why| self.corrupt(&why))?;
            let framed = FRAME_HEADER + header.len;
            self.fill(framed, limit)?;
            let payload = &self.buf[self.head + FRAME_HEADER..self.head + framed];
            let kind = header.verify(payload).map_err(|why| self.corrupt(&why))?;
            let payload = payload.to_vec();
            self.head += framed;
            self.position += framed as Lsn;
            bytes += payload.len();
            out.push(WalRecord {
                kind,
                payload,
                end_lsn: self.position,
            });
        }
        Ok(out)
    }

    /// Make `need` unread bytes available, reading no further than `limit`.
    fn fill(&mut self, need: usize, limit: Lsn) -> Result<(), WalError> {
        let have = self.buf.len() - self.head;
        if have >= need {
            return Ok(());
        }
        let from = self.position + have as Lsn;
        if limit < self.position + need as Lsn {
            return Err(self.corrupt("durable data ends inside a record"));
        }
        let Some(cursor) = self.cursor.as_ref() else {
            return Err(self.corrupt("no open segment"));
        };
        let len = (limit - from).min(READ_CHUNK.max((need - have) as u64)) as usize;
        let offset = segment::offset_of(cursor.base, from);
        self.buf.drain(..self.head);
        self.head = 0;
        let start = self.buf.len();
        self.buf.resize(start + len, 0);
        if let Err(e) = cursor.file.read_exact_at(&mut self.buf[start..], offset) {
            self.buf.truncate(start);
            return Err(WalError::Io {
                context: format!("reading the WAL at LSN {from}"),
                source: e,
            });
        }
        Ok(())
    }

    /// Open the segment holding the position (skipping a gap or deleted
    /// segments if the position is in one).
    fn open_segment(&mut self) -> Result<(), WalError> {
        let segs = self.shared.segments.lock().clone();
        let Some(first) = segs.first() else {
            return Err(WalError::Corrupt("the WAL has no segments".into()));
        };
        let idx = match segs.iter().rposition(|s| s.base <= self.position) {
            Some(i) => i,
            None => {
                if self.position < first.prev_end {
                    tracing::warn!(position = self.position, oldest = first.base, "WAL reader is behind the oldest segment (checkpointed past it); skipping ahead");
                }
                self.position = first.base;
                0
            }
        };
        let seg = &segs[idx];
        let next = segs.get(idx + 1).map(|s| (s.prev_end, s.base));
        let file =
            File::open(&seg.path).map_err(io_err(format!("opening {}", seg.path.display())))?;
        self.buf.clear();
        self.head = 0;
        self.cursor = Some(Cursor {
            base: seg.base,
            file,
            next,
        });
        Ok(())
    }

    fn corrupt(&self, why: &str) -> WalError {
        WalError::Corrupt(format!(
            "durable record at LSN {} is unreadable: {why}",
            self.position
        ))
    }
}
