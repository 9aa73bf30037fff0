//! The registry's instance slab: slots addressed by `u32`, stored in
//! fixed-size chunks so that growing never doubles the memory (a `Vec` at
//! 100k instances holds room for 131k) nor copies every instance on a
//! resize. Each slot carries a generation, bumped when it is emptied, so a
//! stale reference (a deadline-heap entry) can tell it is stale.
//!
//! Owns only the storage; what an instance is, is `state.rs`'s business.

/// Slots per chunk: 1024 × ~136 B, one `mmap`-sized allocation each.
const CHUNK: usize = 1024;

#[derive(Debug)]
pub(super) struct Slot<T> {
    pub gen: u32,
    pub item: Option<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { gen: 0, item: None }
    }
}

#[derive(Debug)]
pub(super) struct Slab<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    /// Slots handed out so far (occupied or free).
    len: usize,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    pub fn slot(&self, i: u32) -> Option<&Slot<T>> {
        let i = i as usize;
        if i >= self.len {
            return None;
        }
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub fn slot_mut(&mut self, i: u32) -> Option<&mut Slot<T>> {
        let i = i as usize;
        if i >= self.len {
            return None;
        }
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    pub fn get(&self, i: u32) -> Option<&T> {
        self.slot(i)?.item.as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.slot_mut(i)?.item.as_mut()
    }

    /// Store `item` in a free slot (a freed one first) and return its index.
    pub fn insert(&mut self, item: T) -> u32 {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.len == self.chunks.len() * CHUNK {
                    self.chunks
                        .push((0..CHUNK).map(|_| Slot::default()).collect());
                }
                self.len += 1;
                (self.len - 1) as u32
            }
        };
        if let Some(s) = self.slot_mut(i) {
            s.item = Some(item);
        }
        i
    }

    /// Empty slot `i`, bump its generation and return what it held.
    pub fn remove(&mut self, i: u32) -> Option<T> {
        let s = self.slot_mut(i)?;
        let item = s.item.take()?;
        s.gen = s.gen.wrapping_add(1);
        self.free.push(i);
        Some(item)
    }

    /// Every slot handed out, with its index.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Slot<T>)> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .take(self.len)
            .enumerate()
            .map(|(i, s)| (i as u32, s))
    }

    /// Every occupied slot's item, mutably.
    pub fn items_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let len = self.len;
        self.chunks
            .iter_mut()
            .flat_map(|c| c.iter_mut())
            .take(len)
            .filter_map(|s| s.item.as_mut())
    }

    /// Slots handed out so far (the bound of valid indexes).
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_in_chunks_and_reuses_freed_slots() {
        let mut slab = Slab::default();
        let n = CHUNK as u32 * 2 + 5;
        for i in 0..n {
            assert_eq!(slab.insert(i), i);
        }
        assert_eq!(slab.chunks.len(), 3);
        assert_eq!(slab.get(CHUNK as u32 + 1), Some(&(CHUNK as u32 + 1)));
        assert_eq!(slab.get(n), None);
        assert_eq!(slab.slot(n + 1).map(|s| s.gen), None);

        let gen = slab.slot(7).map(|s| s.gen);
        assert_eq!(slab.remove(7), Some(7));
        assert_eq!(slab.remove(7), None);
        assert_eq!(slab.get(7), None);
        assert_ne!(slab.slot(7).map(|s| s.gen), gen);
        assert_eq!(slab.insert(99), 7, "a freed slot is reused first");
        assert_eq!(slab.insert(100), n, "then the slab grows");
        assert_eq!(slab.len(), n as usize + 1);
        assert_eq!(slab.iter().count(), n as usize + 1);
        for v in slab.items_mut() {
            *v += 1;
        }
        assert_eq!(slab.get(7), Some(&100));
        assert_eq!(
            slab.iter().filter(|(_, s)| s.item.is_some()).count(),
            n as usize + 1
        );
    }
}
