//! The registry's instance slab: slots addressed by `u32`, stored in
//! fixed-size chunks so that growing never doubles the memory (a `Vec` at
//! 100k instances holds room for 131k) nor copies every instance on a
//! resize. Slots are reused (freed ones first), so a stale reference to a
//! slot must be recognised by its holder (`state.rs` compares deadlines).
//!
//! Owns only the storage; what an instance is, is `state.rs`'s business.

/// Slots per chunk: a chunk of 120-byte items is 120 KiB (jemalloc's
/// 128 KiB size class, whose untouched last pages are never resident).
const CHUNK: usize = 1024;

#[derive(Debug)]
struct Chunk<T> {
    items: Box<[Option<T>]>,
}

impl<T> Chunk<T> {
    fn new() -> Self {
        Chunk {
            items: (0..CHUNK).map(|_| None).collect(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Slab<T> {
    chunks: Vec<Chunk<T>>,
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
    fn place(&self, i: u32) -> Option<(usize, usize)> {
        let i = i as usize;
        (i < self.len).then_some((i / CHUNK, i % CHUNK))
    }

    pub fn get(&self, i: u32) -> Option<&T> {
        let (c, o) = self.place(i)?;
        self.chunks.get(c)?.items.get(o)?.as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        let (c, o) = self.place(i)?;
        self.chunks.get_mut(c)?.items.get_mut(o)?.as_mut()
    }

    /// Store `item` in a free slot (a freed one first) and return its index.
    pub fn insert(&mut self, item: T) -> u32 {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.len == self.chunks.len() * CHUNK {
                    self.chunks.push(Chunk::new());
                }
                self.len += 1;
                (self.len - 1) as u32
            }
        };
        let (c, o) = (i as usize / CHUNK, i as usize % CHUNK);
        if let Some(slot) = self.chunks.get_mut(c).and_then(|ch| ch.items.get_mut(o)) {
            *slot = Some(item);
        }
        i
    }

    /// Empty slot `i` and return what it held.
    pub fn remove(&mut self, i: u32) -> Option<T> {
        let (c, o) = self.place(i)?;
        let item = self.chunks.get_mut(c)?.items.get_mut(o)?.take()?;
        self.free.push(i);
        Some(item)
    }

    /// Every occupied slot's item, with its index.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks
            .iter()
            .flat_map(|c| c.items.iter())
            .take(self.len)
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.as_ref()?)))
    }

    /// Every occupied slot's item, mutably.
    pub fn items_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let len = self.len;
        self.chunks
            .iter_mut()
            .flat_map(|c| c.items.iter_mut())
            .take(len)
            .filter_map(Option::as_mut)
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

        assert_eq!(slab.remove(7), Some(7));
        assert_eq!(slab.remove(7), None);
        assert_eq!(slab.get(7), None);
        assert_eq!(slab.insert(99), 7, "a freed slot is reused first");
        assert_eq!(slab.insert(100), n, "then the slab grows");
        assert_eq!(slab.len(), n as usize + 1);
        for v in slab.items_mut() {
            *v += 1;
        }
        assert_eq!(slab.get(7), Some(&100));
        assert_eq!(slab.iter().count(), n as usize + 1);
        slab.remove(3);
        assert_eq!(
            slab.iter().count(),
            n as usize,
            "an empty slot is not listed"
        );
        assert!(slab.iter().all(|(i, _)| i != 3));
    }
}
