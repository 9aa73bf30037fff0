//! Trace search requests and answers of the search language
//! ([`TraceSearch`] → [`TracePage`]), and the opaque page cursor.
//!
//! Owns the cursor's encoding: `base64url(version, key, trace id,
//! snapshot)`, where `key` is the sort key of the last trace returned (start
//! time of its newest matching span), and `snapshot` the ingest position the
//! first page saw, so later pages ignore spans indexed after it and paging
//! neither skips nor repeats a trace while new data arrives.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::lang::Expr;
use super::TraceId;

/// A search over traces: at least one span per trace matches `filter`
/// and starts inside the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSearch {
    /// `None`: every span matches.
    pub filter: Option<Expr>,
    /// Bounds of the matching span's start time (Unix ns, inclusive).
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    /// Traces per page.
    pub limit: usize,
    /// Continue after this position (from the previous page).
    pub cursor: Option<SearchCursor>,
}

/// Where a page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor {
    /// Sort key of the last trace returned.
    pub key: u64,
    /// Id of the last trace returned (ties on `key` are ordered by id, descending).
    pub trace_id: TraceId,
    /// Highest ingest position (WAL LSN) visible when the first page ran.
    pub snapshot: u64,
}

const CURSOR_VERSION: u8 = 1;
const CURSOR_BYTES: usize = 1 + 8 + 16 + 8;

impl SearchCursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        let mut buf = Vec::with_capacity(CURSOR_BYTES);
        buf.push(CURSOR_VERSION);
        buf.extend_from_slice(&self.key.to_be_bytes());
        buf.extend_from_slice(&self.trace_id);
        buf.extend_from_slice(&self.snapshot.to_be_bytes());
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Parse what [`SearchCursor::encode`] produced.
    pub fn decode(text: &str) -> Result<Self, String> {
        let bad = || "not a cursor returned by this server".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        if bytes.len() != CURSOR_BYTES || bytes[0] != CURSOR_VERSION {
            return Err(bad());
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&bytes[9..25]);
        Ok(SearchCursor {
            key: u64_at(1),
            trace_id,
            snapshot: u64_at(25),
        })
    }
}

/// One trace of a search answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// Service and operation of the root span (the earliest span without a
    /// parent; the earliest span when no root was received).
    pub root_service: String,
    pub root_operation: String,
    /// Earliest span start and latest span end over the whole trace.
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    pub span_count: usize,
    /// Spans with status ERROR.
    pub error_count: usize,
    /// Services with spans in the trace, sorted.
    pub services: Vec<String>,
    /// Start of the newest matching span: the sort key (newest first).
    pub matched_unix_nano: u64,
}

/// One page of traces, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TracePage {
    pub traces: Vec<TraceSummary>,
    /// Present when more traces may follow.
    pub next_cursor: Option<SearchCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = SearchCursor {
            key: 1_714_557_600_123_456_789,
            trace_id: [0xab; 16],
            snapshot: 42,
        };
        let text = c.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(SearchCursor::decode(&text), Ok(c));
        for bad in [
            "",
            "abc",
            "!!!!",
            &text[..text.len() - 2],
            &format!("{text}AA"),
        ] {
            assert!(SearchCursor::decode(bad).is_err(), "{bad}");
        }
        let mut other_version = URL_SAFE_NO_PAD.decode(&text).unwrap();
        other_version[0] = 9;
        assert!(SearchCursor::decode(&URL_SAFE_NO_PAD.encode(other_version)).is_err());
    }
}
