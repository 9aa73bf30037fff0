//! Open-time recovery: find the valid end of the log and make the files agree
//! with it before the writer starts.
//!
//! 1. Read the checkpoint (a damaged one means "replay everything there is").
//! 2. Delete segments wholly below the checkpoint (a crash can leave them).
//! 3. Scan every frame from the checkpoint's segment to the end. Each segment
//!    must end exactly where the next one's header says (`prev_end`).
//! 4. At the first damaged frame: in the last segment it is a torn write
//!    (warn); with later segments after it, real corruption (error, later
//!    segments dropped and counted). Either way the file is cut there.
//! 5. LSNs never go back: if damaged or dropped bytes reached past the cut, or
//!    the checkpoint is past it, the log continues in a new segment that starts
//!    at the highest LSN seen. The indexer skips LSNs it has committed, so
//!    reusing one would silently lose the new record. That segment is created
//!    before anything is cut, so a crash during the repair cannot forget the
//!    highest LSN; repeating the repair gives the same result.
//! 6. A checkpoint that is not on a record end is moved back to one (replaying
//!    a little is safe; starting mid-record would look like corruption).

use std::path::Path;

use super::segment::{self, SegmentInfo, HEADER};
use super::{checkpoint, Lsn, WalError, WalMetrics};

/// The log as the writer and reader will see it.
pub struct Recovered {
    pub segments: Vec<SegmentInfo>,
    pub checkpoint: Lsn,
    pub durable: Lsn,
}

pub fn recover(dir: &Path, min_lsn: u64, metrics: &WalMetrics) -> Result<Recovered, WalError> {
    let stored = match checkpoint::read(dir) {
        Ok(c) => c,
        Err(WalError::Corrupt(why)) => {
            // Replaying from the oldest segment is safe: the indexer skips
            // records its commit payload says it has.
            tracing::error!(dir = %dir.display(), %why, "WAL checkpoint unreadable; replaying from the oldest segment");
            None
        }
        Err(e) => return Err(e),
    };
    let mut files = segment::list(dir)?;
    let Some(&(first_base, _)) = files.first() else {
        let base = stored.unwrap_or(0).max(min_lsn);
        if base > stored.unwrap_or(0) {
            tracing::warn!(dir = %dir.display(), lsn = base, "WAL directory is empty but the index has data up to this LSN; the log continues above it");
        }
        let seg = segment::create(dir, base, base)?;
        return Ok(Recovered {
            segments: vec![seg],
            checkpoint: base,
            durable: base,
        });
    };
    let mut cp = stored.unwrap_or(first_base);
    let mut dir_changed = false;
    while files.len() > 1 && files[1].0 <= cp {
        let (_, path) = files.remove(0);
        segment::remove(&path)?;
        dir_changed = true;
    }

    // Highest LSN any byte on disk (or the checkpoint) has reached, taken
    // before anything is cut so a crash mid-repair cannot forget it.
    let mut high = stored.unwrap_or(0).max(min_lsn);
    let mut headers = Vec::with_capacity(files.len());
    for (i, (base, path)) in files.iter().enumerate() {
        high = high
            .max(*base)
            .max(base + segment::file_len(path).saturating_sub(HEADER));
        let mut header = segment::read_header(path, *base)?;
        if i > 0 && header.is_some_and(|prev_end| prev_end < files[i - 1].0) {
            header = None; // would hide the previous segment from the reader
        }
        headers.push(header);
    }

    let mut segments: Vec<SegmentInfo> = Vec::with_capacity(files.len());
    let mut good_end = cp;
    let mut cut: Option<(usize, u64)> = None; // (segment index, file offset)
    let mut drop_from = files.len();
    for (idx, (base, path)) in files.iter().enumerate() {
        let base = *base;
        let is_last = idx + 1 == files.len();
        let later = files.len() - idx - 1;
        let Some(prev_end) = headers[idx] else {
            // Usually a crash while creating the segment.
            report(
                metrics,
                path,
                0,
                is_last,
                later,
                "missing or bad segment header",
            );
            drop_from = idx;
            break;
        };
        if idx == 0 && cp < prev_end {
            tracing::warn!(
                checkpoint = cp,
                oldest = prev_end,
                "WAL checkpoint is below the oldest segment; records in between are gone"
            );
            cp = prev_end;
        }
        // The segment must end where the next one says it does.
        let limit = match headers.get(idx + 1) {
            Some(Some(next_prev_end)) => Some(segment::offset_of(base, *next_prev_end)),
            _ => None,
        };
        let snap = if idx == 0 && cp >= base {
            segment::offset_of(base, cp)
        } else {
            HEADER
        };
        let end = segment::scan(path, limit, snap)?;
        if idx == 0 && cp >= base {
            let snapped = base + end.snapped - HEADER;
            if snapped != cp && end.good_offset >= snap {
                tracing::warn!(
                    checkpoint = cp,
                    record_end = snapped,
                    "WAL checkpoint is not at a record end; replaying from the previous one"
                );
            }
            cp = snapped;
        }
        segments.push(SegmentInfo {
            base,
            prev_end,
            path: path.clone(),
        });
        good_end = base + end.good_offset - HEADER;
        if let Some(why) = end.damage {
            report(metrics, path, end.good_offset, is_last, later, &why);
            cut = Some((idx, end.good_offset));
            drop_from = idx + 1;
            break;
        }
        if let Some(l) = limit.filter(|l| end.file_len > *l) {
            // Bytes past the next segment's start were never part of the log.
            tracing::warn!(file = %path.display(), offset = l, "WAL segment runs past the next segment's start; cutting the extra bytes");
            segment::truncate(path, l)?;
        }
    }

    // Continue past the damaged range first (so LSNs never go back even if
    // we crash below), then cut and drop.
    let mut durable = good_end;
    if segments.is_empty() || high > good_end {
        let base = high.max(good_end);
        if base > good_end {
            tracing::warn!(
                from = good_end,
                to = base,
                "WAL continues past the damaged range so that no LSN is reused"
            );
        }
        let seg = segment::create(dir, base, good_end)?;
        durable = base;
        dir_changed = true;
        segments.push(seg);
    }
    if let Some((idx, offset)) = cut {
        segment::truncate(&files[idx].1, offset)?;
    }
    let newest = segments.last().map(|s| s.path.clone());
    for (_, path) in &files[drop_from..] {
        if Some(path) != newest.as_ref() {
            segment::remove(path)?;
        }
        metrics.dropped_segments.inc();
        dir_changed = true;
    }
    if dir_changed {
        segment::sync_dir(dir)?;
    }
    if stored.is_some_and(|s| s > good_end) {
        // Everything that survived is indexed already.
        cp = durable;
    }
    cp = cp.min(durable);
    if stored != Some(cp) {
        checkpoint::write(dir, cp)?;
    }
    Ok(Recovered {
        segments,
        checkpoint: cp,
        durable,
    })
}

fn report(metrics: &WalMetrics, path: &Path, offset: u64, is_last: bool, later: usize, why: &str) {
    metrics.torn_tail_repairs.inc();
    if is_last {
        tracing::warn!(file = %path.display(), offset, "torn WAL tail ({why}); truncating");
    } else {
        tracing::error!(
            file = %path.display(),
            offset,
            later_segments = later,
            "corrupt WAL record ({why}); truncating here and dropping the later segments"
        );
    }
}
