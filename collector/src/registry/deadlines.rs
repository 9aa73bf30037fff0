//! The expiry deadline heap: a min-heap of 8-byte entries, one `u64` each,
//! the deadline in the upper 40 bits and the instance's slot in the lower
//! 24. A deadline is kept in 10 ms ticks since the Unix epoch, rounded up
//! (40 bits of ticks reach the year 2318), so an entry never comes due
//! before its instance's deadline and at most one tick after it. At 100k
//! instances this is 1 MiB where `(u64, u32, u32)` tuples took 2 MiB.
//!
//! Owns only the ordering; which entry is still current is `state.rs`'s
//! business (it keeps the rounded deadline of each instance's live entry).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Slots an entry can name; the registry holds at most this many instances.
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;
const SLOT_BITS: u32 = 24;
const TICK_MS: u64 = 10;
const MAX_TICK: u64 = (1 << (64 - SLOT_BITS)) - 1;

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<u64>>,
}

impl Deadlines {
    /// The deadline an entry for `at` carries: `at` rounded up to a tick.
    pub fn rounded(at: u64) -> u64 {
        at.div_ceil(TICK_MS).min(MAX_TICK) * TICK_MS
    }

    /// Add an entry for `slot` due at `at`; returns its rounded deadline.
    pub fn push(&mut self, at: u64, slot: u32) -> u64 {
        debug_assert!((slot as usize) < MAX_SLOTS);
        let tick = at.div_ceil(TICK_MS).min(MAX_TICK);
        let slot = u64::from(slot) & (MAX_SLOTS as u64 - 1);
        self.heap.push(Reverse(tick << SLOT_BITS | slot));
        tick * TICK_MS
    }

    /// The earliest entry: its rounded deadline and slot.
    pub fn peek(&self) -> Option<(u64, u32)> {
        self.heap.peek().map(|&Reverse(e)| {
            (
                (e >> SLOT_BITS) * TICK_MS,
                (e & (MAX_SLOTS as u64 - 1)) as u32,
            )
        })
    }

    pub fn pop(&mut self) {
        self.heap.pop();
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_by_deadline_rounded_up_never_early() {
        let mut d = Deadlines::default();
        let now = 1_764_000_000_123;
        assert_eq!(d.push(now + 5_000, 7), now + 5_007);
        assert_eq!(d.push(now + 1_001, (MAX_SLOTS - 1) as u32), now + 1_007);
        assert_eq!(d.push(now + 1_000, 3), now + 1_007, "same tick");
        assert_eq!(d.push(now + 1_010, 0), now + 1_017);
        assert_eq!(Deadlines::rounded(now + 1_010), now + 1_017);
        assert_eq!(Deadlines::rounded(20), 20);
        assert_eq!(Deadlines::rounded(21), 30);
        let mut out = Vec::new();
        while let Some(e) = d.peek() {
            out.push(e);
            d.pop();
        }
        assert_eq!(
            out,
            [
                (now + 1_007, 3),
                (now + 1_007, (MAX_SLOTS - 1) as u32),
                (now + 1_017, 0),
                (now + 5_007, 7)
            ]
        );
        assert_eq!(d.len(), 0);
        assert_eq!(std::mem::size_of::<Reverse<u64>>(), 8);
    }

    #[test]
    fn deadlines_past_the_range_saturate() {
        let mut d = Deadlines::default();
        let top = d.push(u64::MAX, 1);
        assert_eq!(top, MAX_TICK * TICK_MS);
        assert_eq!(d.peek(), Some((top, 1)));
    }
}
