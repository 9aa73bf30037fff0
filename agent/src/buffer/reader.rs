//! Reading the buffer in order for the exporter.
//!
//! A [`Reader`] walks frames from the acknowledged position up to the written
//! end and merges consecutive frames of one kind into a [`Batch`]: the
//! concatenation of encoded `Export*ServiceRequest`s is itself a valid
//! request (protobuf merges repeated fields), so nothing is decoded. It never
//! writes or deletes files.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::segment::{self, FrameError, Kind};
use super::Inner;

/// Consecutive frames of one kind, ready to send.
#[derive(Debug)]
pub struct Batch {
    pub kind: Kind,
    /// Spans or log records.
    pub items: u64,
    /// Concatenated encoded requests (one valid request).
    pub payload: Vec<u8>,
    /// Offset just past the last frame: ack this once the collector accepted it.
    pub end: u64,
}

struct Open {
    base: u64,
    /// The next segment's base, if it existed when this one was opened.
    next: Option<u64>,
    reader: BufReader<File>,
    at: u64,
}

/// An in-order cursor over the buffer.
pub struct Reader {
    inner: Arc<Inner>,
    pos: u64,
    open: Option<Open>,
}

impl Reader {
    pub(super) fn new(inner: Arc<Inner>, pos: u64) -> Reader {
        Reader {
            inner,
            pos,
            open: None,
        }
    }

    /// Offset of the next unread frame.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Wait for data, then gather up to `max_items` items / `max_bytes`
    /// bytes, lingering up to `linger` for more to arrive. `None` when
    /// cancelled before any data arrived.
    pub async fn next_batch(
        &mut self,
        max_items: u64,
        max_bytes: usize,
        linger: Duration,
        cancel: &CancellationToken,
    ) -> Option<Batch> {
        if !self.wait_for_data(cancel, None).await {
            return None;
        }
        let deadline = tokio::time::Instant::now() + linger;
        let mut batch: Option<Batch> = None;
        loop {
            while self.pos < self.end() {
                let Some((kind, items, payload, end)) = self.read_one() else {
                    continue;
                };
                match &mut batch {
                    None => {
                        batch = Some(Batch {
                            kind,
                            items: u64::from(items),
                            payload,
                            end,
                        })
                    }
                    Some(b) if b.kind == kind => {
                        b.items += u64::from(items);
                        b.payload.extend_from_slice(&payload);
                        b.end = end;
                    }
                    Some(_) => {
                        // A kind change ends the batch; re-read this frame next time.
                        self.unread();
                        return batch;
                    }
                }
                self.pos = end;
                if let Some(b) = &batch {
                    if b.items >= max_items || b.payload.len() >= max_bytes {
                        return batch;
                    }
                }
            }
            if batch.is_some() && tokio::time::Instant::now() >= deadline {
                return batch;
            }
            if !self.wait_for_data(cancel, Some(deadline)).await {
                return batch;
            }
        }
    }

    fn end(&self) -> u64 {
        self.inner.end.load(Ordering::Acquire)
    }

    /// Wait until there is unread written data. False on cancel or deadline.
    async fn wait_for_data(
        &self,
        cancel: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) -> bool {
        loop {
            let notified = self.inner.grew.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pos < self.end() {
                return true;
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = cancel.cancelled() => return false,
                _ = sleep => return false,
            }
        }
    }

    /// Forget the open file position so the next read starts at `pos` again.
    fn unread(&mut self) {
        self.open = None;
    }

    /// Read the frame at `pos`. On corruption, skip to the next segment and
    /// return `None` (counted).
    fn read_one(&mut self) -> Option<(Kind, u32, Vec<u8>, u64)> {
        for attempt in 0..2 {
            if let Err(e) = self.seek() {
                tracing::error!(
                    "disk buffer: opening the segment at offset {}: {e}",
                    self.pos
                );
                return self.skip_segment();
            }
            let limit = self.end();
            let open = self.open.as_mut()?;
            match segment::read_frame(&mut open.reader, limit - self.pos) {
                Ok(f) => {
                    let end = self.pos + segment::HEADER + f.payload.len() as u64;
                    open.at = end;
                    return Some((f.kind, f.items, f.payload, end));
                }
                Err(FrameError::Truncated) if attempt == 0 => {
                    // The end of a segment: the writer may have rolled since
                    // it was opened. Look the segments up again.
                    self.open = None;
                }
                Err(e) => {
                    tracing::error!(
                        "disk buffer: frame at offset {}: {e}; skipping to the next segment",
                        self.pos
                    );
                    self.inner.metrics.corrupt.inc();
                    return self.skip_segment();
                }
            }
        }
        None
    }

    fn skip_segment(&mut self) -> Option<(Kind, u32, Vec<u8>, u64)> {
        let next = {
            let st = self.inner.state.lock();
            st.segments.iter().copied().find(|&b| b > self.pos)
        };
        self.open = None;
        self.pos = next.unwrap_or_else(|| self.end());
        None
    }

    /// Make sure the open segment contains `pos` and is positioned there.
    fn seek(&mut self) -> std::io::Result<()> {
        if let Some(o) = &mut self.open {
            let inside = self.pos >= o.base && o.next.is_none_or(|n| self.pos < n);
            if inside && o.at == self.pos {
                return Ok(());
            }
            if inside {
                o.reader.seek(SeekFrom::Start(self.pos - o.base))?;
                o.at = self.pos;
                return Ok(());
            }
        }
        let (base, next) = {
            let st = self.inner.state.lock();
            // The last segment starting at or below `pos`.
            let idx = st.segments.partition_point(|&b| b <= self.pos);
            if idx == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no segment holds this offset",
                ));
            }
            (st.segments[idx - 1], st.segments.get(idx).copied())
        };
        let path = segment::path(&self.inner.dir, base);
        let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
        reader.seek(SeekFrom::Start(self.pos - base))?;
        self.open = Some(Open {
            base,
            next,
            reader,
            at: self.pos,
        });
        Ok(())
    }
}
