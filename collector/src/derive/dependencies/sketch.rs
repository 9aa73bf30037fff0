//! A small mergeable latency sketch: counts in log-spaced bins
//! (each bin 10% wider than the one below, from 1 µs up), so per-minute
//! sketches of an edge can be summed over any window and p50/p99 read with
//! about ±5% relative error. Sparse: only non-empty bins are kept.

use serde::{Deserialize, Serialize};

/// Ratio between neighbouring bin bounds.
const GAMMA: f64 = 1.1;
/// Durations at or below this (ns) share bin 0.
const FLOOR_NS: f64 = 1_000.0;
/// Highest bin (1 µs · 1.1^400 is far beyond any real span).
const MAX_BIN: u16 = 400;

/// Sorted `(bin, count)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sketch {
    bins: Vec<(u16, u64)>,
}

impl Sketch {
    pub fn add(&mut self, duration_ns: u64) {
        self.add_n(bin_of(duration_ns), 1);
    }

    fn add_n(&mut self, bin: u16, n: u64) {
        match self.bins.binary_search_by_key(&bin, |&(b, _)| b) {
            Ok(i) => self.bins[i].1 += n,
            Err(i) => self.bins.insert(i, (bin, n)),
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        for &(bin, n) in &other.bins {
            self.add_n(bin, n);
        }
    }

    pub fn count(&self) -> u64 {
        self.bins.iter().map(|&(_, n)| n).sum()
    }

    /// The `q`-quantile (0..=1) in nanoseconds: the geometric middle of the
    /// bin holding the sample of rank ⌈q·count⌉. `None` when empty.
    pub fn quantile_ns(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(bin, n) in &self.bins {
            seen += n;
            if seen >= rank {
                return Some(value_of(bin));
            }
        }
        self.bins.last().map(|&(b, _)| value_of(b))
    }

    /// Drop bins that are out of range (a damaged file); keeps the invariants.
    pub fn sanitize(&mut self) {
        self.bins.retain(|&(b, n)| b <= MAX_BIN && n > 0);
        self.bins.sort_by_key(|&(b, _)| b);
        self.bins.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 += later.1;
                true
            } else {
                false
            }
        });
    }
}

fn bin_of(ns: u64) -> u16 {
    let v = ns as f64;
    if v <= FLOOR_NS {
        return 0;
    }
    let bin = ((v / FLOOR_NS).ln() / GAMMA.ln()).ceil();
    (bin as u64).min(u64::from(MAX_BIN)) as u16
}

/// Bin `b` holds (FLOOR·γ^(b-1), FLOOR·γ^b]; its geometric middle.
fn value_of(bin: u16) -> f64 {
    if bin == 0 {
        return FLOOR_NS;
    }
    FLOOR_NS * GAMMA.powf(f64::from(bin) - 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_five_percent() {
        let mut s = Sketch::default();
        for ms in 1..=1000u64 {
            s.add(ms * 1_000_000);
        }
        let p50 = s.quantile_ns(0.5).unwrap() / 1e6;
        let p99 = s.quantile_ns(0.99).unwrap() / 1e6;
        assert!((p50 - 500.0).abs() / 500.0 < 0.05, "p50 {p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.05, "p99 {p99}");
        assert_eq!(s.count(), 1000);
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let (mut a, mut b, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        for (i, ns) in [0u64, 500, 2_000, 7_777_777, 3_000_000_000, u64::MAX]
            .into_iter()
            .enumerate()
        {
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            half.add(ns);
            all.add(ns);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(Sketch::default().quantile_ns(0.5), None);
        let json = serde_json::to_string(&a).unwrap();
        let mut back: Sketch = serde_json::from_str(&json).unwrap();
        back.sanitize();
        assert_eq!(back, a);
    }
}
