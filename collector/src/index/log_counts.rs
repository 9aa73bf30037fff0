//! A tantivy collector counting log documents per time bucket and group
//! (`service`, level from `severity_number`) from fast fields only: no
//! stored document is read. Also sums `body_bytes` for `index/stats`.
//!
//! Bounded: at most [`MAX_CELLS`] group × bucket counters per query; past
//! that the fruit says `overflow` and the caller refuses the query.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::schema::log_names;
use crate::query::logql::labels::level_name;
use crate::query::Buckets;

/// Most counters one query may hold.
pub(crate) const MAX_CELLS: usize = 4_000_000;

/// Group key: service (if grouped) and level (if grouped).
pub(crate) type GroupKey = (Option<String>, Option<&'static str>);

#[derive(Default)]
pub(crate) struct Counts {
    pub groups: HashMap<GroupKey, Vec<u64>>,
    pub bytes: u64,
    pub overflow: bool,
}

pub(crate) struct CountCollector {
    pub buckets: Buckets,
    pub by_service: bool,
    pub by_level: bool,
}

impl Collector for CountCollector {
    type Fruit = Counts;
    type Child = CountSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<CountSegment> {
        let ff = reader.fast_fields();
        Ok(CountSegment {
            ts: ff.u64(log_names::TIMESTAMP)?,
            severity: ff.u64(log_names::SEVERITY)?,
            bytes_col: ff.u64(log_names::BODY_BYTES)?,
            service: if self.by_service {
                ff.str(log_names::SERVICE)?
            } else {
                None
            },
            buckets: self.buckets,
            by_service: self.by_service,
            by_level: self.by_level,
            groups: HashMap::new(),
            bytes: 0,
            overflow: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Counts>) -> tantivy::Result<Counts> {
        let mut out = Counts::default();
        for f in fruits {
            out.bytes += f.bytes;
            out.overflow |= f.overflow;
            for (k, v) in f.groups {
                if !out.groups.contains_key(&k)
                    && (out.groups.len() + 1) * self.buckets.count > MAX_CELLS
                {
                    out.overflow = true;
                    continue;
                }
                let slot = out
                    .groups
                    .entry(k)
                    .or_insert_with(|| vec![0; self.buckets.count]);
                for (a, b) in slot.iter_mut().zip(v) {
                    *a += b;
                }
            }
        }
        Ok(out)
    }
}

pub(crate) struct CountSegment {
    ts: Column<u64>,
    severity: Column<u64>,
    bytes_col: Column<u64>,
    service: Option<StrColumn>,
    buckets: Buckets,
    by_service: bool,
    by_level: bool,
    /// (service term ordinal or u64::MAX, level index) → counts.
    groups: HashMap<(u64, u8), Vec<u64>>,
    bytes: u64,
    overflow: bool,
}

fn level_index(sev: u64) -> u8 {
    match sev {
        1..=4 => 1,
        5..=8 => 2,
        9..=12 => 3,
        13..=16 => 4,
        17..=20 => 5,
        21..=24 => 6,
        _ => 0,
    }
}

const LEVEL_OF_INDEX: [i32; 7] = [0, 1, 5, 9, 13, 17, 21];

impl SegmentCollector for CountSegment {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(t) = self.ts.first(doc) else { return };
        let Some(b) = self.buckets.index(t) else {
            return;
        };
        let ord = match (&self.service, self.by_service) {
            (Some(col), true) => col.term_ords(doc).next().unwrap_or(u64::MAX),
            _ => u64::MAX,
        };
        let lvl = if self.by_level {
            level_index(self.severity.first(doc).unwrap_or(0))
        } else {
            0
        };
        self.bytes += self.bytes_col.first(doc).unwrap_or(0);
        let count = self.buckets.count;
        if !self.groups.contains_key(&(ord, lvl)) && (self.groups.len() + 1) * count > MAX_CELLS {
            self.overflow = true;
            return;
        }
        self.groups
            .entry((ord, lvl))
            .or_insert_with(|| vec![0; count])[b] += 1;
    }

    fn harvest(self) -> Counts {
        let mut out = Counts {
            bytes: self.bytes,
            overflow: self.overflow,
            ..Counts::default()
        };
        let mut name = String::new();
        for ((ord, lvl), counts) in self.groups {
            let service = if self.by_service {
                name.clear();
                let found = match (&self.service, ord) {
                    (Some(col), o) if o != u64::MAX => {
                        col.ord_to_str(o, &mut name).unwrap_or(false)
                    }
                    _ => false,
                };
                Some(if found { name.clone() } else { String::new() })
            } else {
                None
            };
            let level = self
                .by_level
                .then(|| level_name(LEVEL_OF_INDEX[lvl as usize]));
            let slot = out
                .groups
                .entry((service, level))
                .or_insert_with(|| vec![0; counts.len()]);
            for (a, b) in slot.iter_mut().zip(counts) {
                *a += b;
            }
        }
        out
    }
}
