//! The label-based log selection the Loki API needs from a [`super::LogStore`]:
//! label matchers ([`LabelMatcher`]), selections over a time window
//! ([`LogSelect`]), time-bucketed counts grouped by cheap labels
//! ([`CountQuery`]) and size statistics ([`LogStats`]).
//!
//! Labels are those of the Loki label model in [`super::logql::labels`]
//! (`service_name`, sanitized resource and record attributes, `level`, …).
//! A store answers matchers it can index ([`LabelMatcher::pushable`]) from
//! its index; the query layer re-checks every row it reads, so a store may
//! return a superset from [`super::LogStore::select_logs`].

use regex::Regex;

use super::logql::labels::{row_labels, LabelSet};
use super::LogRow;

/// How a label matcher compares (`=`, `!=`, `=~`, `!~`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Neq,
    Re,
    Nre,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

/// `name op "value"`, with Loki's semantics: an absent label has the value
/// `""`, and regular expressions must match the whole value (RE2 syntax).
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex for `=~`/`!~`.
    re: Option<Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Label names that are not in the store's label index (only re-checked in memory).
const UNINDEXED: &[&str] = &["severity_number"];
/// Label names the store keeps in dedicated fields: equality only.
pub const ID_LABELS: &[&str] = &["trace_id", "span_id"];

impl LabelMatcher {
    /// Build a matcher; a bad regular expression is an error naming it.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        let re = match op {
            MatchOp::Re | MatchOp::Nre => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
            ),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(LabelMatcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Does a label value (`None` = absent, same as `""`) satisfy the matcher?
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Neq, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::Nre, Some(re)) => !re.is_match(v),
            (MatchOp::Re | MatchOp::Nre, None) => false,
        }
    }

    /// Whether a store can answer this matcher exactly from its index.
    pub fn pushable(&self) -> bool {
        if UNINDEXED.contains(&self.name.as_str()) {
            return false;
        }
        if ID_LABELS.contains(&self.name.as_str()) {
            return matches!(self.op, MatchOp::Eq | MatchOp::Neq);
        }
        true
    }

    /// The `name op "value"` form, for messages.
    pub fn display(&self) -> String {
        format!("{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Log records whose labels satisfy every matcher, with a timestamp in
/// `[start_unix_nano, end_unix_nano]` (both inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct LogSelect {
    pub matchers: Vec<LabelMatcher>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl LogSelect {
    /// Whether `row` (with its computed labels) is selected.
    pub fn accepts(&self, row: &LogRow, labels: &LabelSet) -> bool {
        let ts = super::logql::labels::row_time(row);
        ts >= self.start_unix_nano
            && ts <= self.end_unix_nano
            && self.matchers.iter().all(|m| m.matches(labels.get(&m.name)))
    }
}

/// Which end of the window comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
}

/// Labels a store can group counts by without reading records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastLabel {
    ServiceName,
    /// `level` (and its copy `detected_level`).
    Level,
}

impl FastLabel {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "service_name" => Some(FastLabel::ServiceName),
            "level" | "detected_level" => Some(FastLabel::Level),
            _ => None,
        }
    }
}

/// Equal-width time buckets: bucket `i` holds timestamps in
/// `(origin + i·width, origin + (i+1)·width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub origin: u64,
    pub width: u64,
    pub count: usize,
}

impl Buckets {
    /// The bucket of `ts`, if inside.
    pub fn index(&self, ts: u64) -> Option<usize> {
        if ts <= self.origin || self.width == 0 {
            return None;
        }
        let i = ((ts - self.origin - 1) / self.width) as usize;
        (i < self.count).then_some(i)
    }

    /// First and last timestamp covered (inclusive).
    pub fn bounds(&self) -> (u64, u64) {
        let end = self
            .origin
            .saturating_add(self.width.saturating_mul(self.count as u64));
        (self.origin.saturating_add(1), end)
    }
}

/// Count the selected records per group and time bucket. Only matchers that
/// are [`LabelMatcher::pushable`] may be used (others are an error).
#[derive(Debug, Clone, PartialEq)]
pub struct CountQuery {
    pub matchers: Vec<LabelMatcher>,
    pub group_by: Vec<FastLabel>,
    pub buckets: Buckets,
}

/// Counts of one group: `group[i]` is the value of `group_by[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CountSeries {
    pub group: Vec<String>,
    pub counts: Vec<u64>,
}

/// What `index/stats` reports for a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// Distinct `(service_name, level)` pairs.
    pub streams: u64,
    /// Storage partitions touched.
    pub chunks: u64,
    /// Records.
    pub entries: u64,
    /// Sum of the records' body sizes.
    pub bytes: u64,
}

/// Most rows the generic (in-memory) implementations look at.
pub const GENERIC_SCAN_CAP: usize = 200_000;

/// Rows in the window of `sel`, checked in memory (the generic fallbacks).
pub(crate) fn generic_select(rows: Vec<LogRow>, sel: &LogSelect) -> Vec<(LogRow, LabelSet)> {
    rows.into_iter()
        .filter_map(|row| {
            let labels = row_labels(&row);
            sel.accepts(&row, &labels).then_some((row, labels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_follow_loki_semantics() {
        let re = LabelMatcher::new("a", MatchOp::Re, "fo+").unwrap();
        assert!(re.matches(Some("foo")));
        assert!(!re.matches(Some("xfoo")), "anchored");
        assert!(!re.matches(None));
        let nre = LabelMatcher::new("a", MatchOp::Nre, "fo+").unwrap();
        assert!(nre.matches(None));
        let neq = LabelMatcher::new("a", MatchOp::Neq, "").unwrap();
        assert!(!neq.matches(None));
        assert!(neq.matches(Some("x")));
        assert!(LabelMatcher::new("a", MatchOp::Re, "(").is_err());
        assert!(!LabelMatcher::new("trace_id", MatchOp::Re, ".*")
            .unwrap()
            .pushable());
    }

    #[test]
    fn buckets_are_left_open() {
        let b = Buckets {
            origin: 100,
            width: 10,
            count: 3,
        };
        assert_eq!(b.index(100), None);
        assert_eq!(b.index(101), Some(0));
        assert_eq!(b.index(110), Some(0));
        assert_eq!(b.index(111), Some(1));
        assert_eq!(b.index(130), Some(2));
        assert_eq!(b.index(131), None);
        assert_eq!(b.bounds(), (101, 130));
    }
}
