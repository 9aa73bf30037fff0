//! Following one file: read complete lines from an open handle, join
//! multi-line records, notice copy-truncate, and track the committed offset
//! (everything before it is durably in the buffer).
//!
//! The handle stays open across a rename, so lines written before a
//! rename rotation are drained from the old inode. Owns its handle only; the
//! tailer decides when a follower is detached or dropped.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use regex::Regex;

use super::checkpoint::{Checkpoint, FileId, Fingerprint, FINGERPRINT_BYTES};

/// Most bytes read from one file per poll (bounds memory).
pub const READ_CHUNK: u64 = 1 << 20;
/// A line longer than this is cut into pieces.
pub const MAX_LINE: usize = 256 << 10;

/// A record ready to send, with the offset just past it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub end: u64,
}

/// What a poll found.
#[derive(Debug, Default, PartialEq)]
pub struct Polled {
    pub lines: Vec<Line>,
    /// The file was truncated (copy-truncate) before this poll.
    pub truncated: bool,
    /// Nothing new and nothing pending: fully drained.
    pub idle: bool,
}

struct Pending {
    text: String,
    end: u64,
}

/// One followed file.
pub struct Follower {
    pub path: PathBuf,
    pub id: FileId,
    file: File,
    /// Committed: every record before it is in the buffer.
    pub offset: u64,
    /// Consumed into `lines` handed out or `pending`.
    read: u64,
    pending: Option<Pending>,
    fingerprint: Fingerprint,
    /// The path no longer leads here (renamed away or deleted).
    pub detached: bool,
    pub size: u64,
}

impl Follower {
    pub fn new(path: PathBuf, file: File, id: FileId, offset: u64) -> std::io::Result<Self> {
        let size = file.metadata()?.len();
        let offset = if offset > size { 0 } else { offset };
        let fingerprint = Fingerprint::read(&file, size)?;
        Ok(Follower {
            path,
            id,
            file,
            offset,
            read: offset,
            pending: None,
            fingerprint,
            detached: false,
            size,
        })
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            path: self.path.clone(),
            id: self.id,
            offset: self.offset,
            fingerprint: self.fingerprint,
        }
    }

    /// Read what is new. `multiline`: a line matching it starts a record,
    /// others join the previous one; a pending record is flushed when a poll
    /// brings nothing new.
    pub fn poll(&mut self, multiline: Option<&Regex>) -> std::io::Result<Polled> {
        let mut out = Polled::default();
        let size = self.file.metadata()?.len();
        // Shrunk, or its first bytes changed (truncated and rewritten past
        // our offset between two polls).
        let rewritten = self.fingerprint.len > 0 && !self.fingerprint.matches(&self.file, size);
        if size < self.read || rewritten {
            // Copy-truncate: what is pending was read before; emit it, start over.
            out.truncated = true;
            if let Some(p) = self.pending.take() {
                out.lines.push(Line {
                    text: p.text,
                    end: 0,
                });
            }
            self.read = 0;
            self.offset = 0;
            self.fingerprint = Fingerprint::default();
        }
        self.size = size;
        if self.fingerprint.len < FINGERPRINT_BYTES && size > self.fingerprint.len {
            self.fingerprint = Fingerprint::read(&self.file, size)?;
        }
        let want = (size - self.read).min(READ_CHUNK);
        let mut buf = vec![0u8; want as usize];
        if want > 0 {
            self.file.read_exact_at(&mut buf, self.read)?;
        }
        let mut consumed = 0usize;
        let mut got_line = false;
        while consumed < buf.len() {
            let rest = &buf[consumed..];
            let (line_len, advance) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i <= MAX_LINE => (i, i + 1),
                None if rest.len() < MAX_LINE => break, // incomplete: wait for the rest
                _ => (MAX_LINE, MAX_LINE),
            };
            let mut text = String::from_utf8_lossy(&rest[..line_len]).into_owned();
            if text.ends_with('\r') {
                text.pop();
            }
            consumed += advance;
            got_line = true;
            let end = self.read + consumed as u64;
            match multiline {
                None => out.lines.push(Line { text, end }),
                Some(re) => {
                    let starts = re.is_match(&text);
                    match self.pending.as_mut() {
                        Some(p) if !starts && p.text.len() < MAX_LINE * 4 => {
                            p.text.push('\n');
                            p.text.push_str(&text);
                            p.end = end;
                        }
                        _ => {
                            if let Some(p) = self.pending.take() {
                                out.lines.push(Line {
                                    text: p.text,
                                    end: p.end,
                                });
                            }
                            self.pending = Some(Pending { text, end });
                        }
                    }
                }
            }
        }
        self.read += consumed as u64;
        if !got_line {
            if let Some(p) = self.pending.take() {
                out.lines.push(Line {
                    text: p.text,
                    end: p.end,
                });
            }
        }
        out.idle = out.lines.is_empty() && self.pending.is_none() && self.read >= size;
        Ok(out)
    }

    /// The lines handed out up to `end` are durably buffered.
    pub fn commit(&mut self, end: u64) {
        self.offset = self.offset.max(end);
    }

    /// The last handed-out lines could not be buffered: read them again.
    pub fn rewind(&mut self) {
        self.read = self.offset;
        self.pending = None;
    }

    /// Whether `file` (found at this follower's path) is this follower's
    /// file with its content intact, judged by the fingerprint.
    pub fn same_content(cp: &Checkpoint, file: &File, size: u64) -> bool {
        cp.fingerprint.matches(file, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn open(path: &std::path::Path) -> Follower {
        let f = File::open(path).unwrap();
        let id = FileId::of(&f.metadata().unwrap());
        Follower::new(path.to_path_buf(), f, id, 0).unwrap()
    }

    fn texts(p: &Polled) -> Vec<&str> {
        p.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn complete_lines_only_then_truncation_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut w = std::fs::File::create(&path).unwrap();
        w.write_all(b"one\ntwo\nthr").unwrap();
        let mut f = open(&path);
        let p = f.poll(None).unwrap();
        assert_eq!(texts(&p), ["one", "two"]);
        assert_eq!(p.lines[1].end, 8);
        f.commit(8);
        w.write_all(b"ee\r\n").unwrap();
        assert_eq!(texts(&f.poll(None).unwrap()), ["three"]);
        f.rewind();
        assert_eq!(
            texts(&f.poll(None).unwrap()),
            ["three"],
            "rewind re-reads uncommitted lines"
        );
        f.commit(14);
        assert!(f.poll(None).unwrap().idle);
        // Copy-truncate.
        w.set_len(0).unwrap();
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"new\n").unwrap();
        let p = f.poll(None).unwrap();
        assert!(p.truncated);
        assert_eq!(texts(&p), ["new"]);
    }

    #[test]
    fn multiline_records_join_and_flush_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(
            &path,
            "2024 ERROR boom\n  at a()\n  at b()\n2024 INFO next\n",
        )
        .unwrap();
        let re = Regex::new(r"^\d{4} ").unwrap();
        let mut f = open(&path);
        let p = f.poll(Some(&re)).unwrap();
        assert_eq!(texts(&p), ["2024 ERROR boom\n  at a()\n  at b()"]);
        let p = f.poll(Some(&re)).unwrap();
        assert_eq!(
            texts(&p),
            ["2024 INFO next"],
            "flushed when nothing new arrives"
        );
        assert!(f.poll(Some(&re)).unwrap().idle);
    }
}
