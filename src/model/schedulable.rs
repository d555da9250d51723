//! The schedulable nodes of one node group, by free pod slots: what the scheduler asks
//! for at every bind ("the node with the most free room, the lowest index among equals")
//! and what every bind and unbind changes (the node moves from one count to the next).
//!
//! A set of nodes per free count, each a bitset over node indices, and a bitset of the
//! counts that have any node: a move is two bit flips and the query two word scans,
//! where the ordered set of (free, node) it replaces took a tree insert and remove per
//! bind (~6 % of a 2 M-pod run). The answers are the same.

/// Schedulable nodes of one group by free slots. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct FreeIndex {
    /// `by_free[f]`: bit `n` set iff node `n` is listed with `f` free slots.
    by_free: Vec<Vec<u64>>,
    /// Bit `f` set iff `by_free[f]` has a node.
    nonempty: Vec<u64>,
}

fn set(bits: &mut Vec<u64>, i: usize) {
    if bits.len() <= i / 64 {
        bits.resize(i / 64 + 1, 0);
    }
    bits[i / 64] |= 1 << (i % 64);
}

fn get(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn first(bits: &[u64]) -> Option<usize> {
    bits.iter()
        .position(|&w| w != 0)
        .map(|i| i * 64 + bits[i].trailing_zeros() as usize)
}

impl FreeIndex {
    /// Lists `node` with `free` slots.
    pub fn insert(&mut self, node: u32, free: u32) {
        let f = free as usize;
        if self.by_free.len() <= f {
            self.by_free.resize(f + 1, Vec::new());
        }
        set(&mut self.by_free[f], node as usize);
        set(&mut self.nonempty, f);
    }

    /// Unlists `node`, listed with `free` slots (nothing if it is not).
    pub fn remove(&mut self, node: u32, free: u32) {
        let f = free as usize;
        let Some(bits) = self.by_free.get_mut(f) else {
            return;
        };
        let (w, b) = (node as usize / 64, node as usize % 64);
        if let Some(word) = bits.get_mut(w) {
            *word &= !(1 << b);
        }
        if bits.iter().all(|&w| w == 0) {
            self.nonempty[f / 64] &= !(1 << (f % 64));
        }
    }

    /// Whether `node` is listed with `free` slots.
    pub fn contains(&self, node: u32, free: u32) -> bool {
        self.by_free
            .get(free as usize)
            .is_some_and(|bits| get(bits, node as usize))
    }

    /// The listed node with the most free slots (the lowest index among equals), with
    /// its free slots; `None` when no listed node has a free slot.
    pub fn best(&self) -> Option<(u32, u32)> {
        let f = self
            .nonempty
            .iter()
            .enumerate()
            .rev()
            .find(|(_, &w)| w != 0)
            .map(|(i, &w)| i * 64 + 63 - w.leading_zeros() as usize)?;
        if f == 0 {
            return None;
        }
        let node = first(&self.by_free[f]).expect("non-empty count");
        Some((f as u32, node as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// Against the ordered set of (u32::MAX - free, node) it replaces: the same
        /// membership and the same best node after any inserts and removes.
        #[test]
        fn answers_as_the_ordered_set_does(ops in proptest::collection::vec((0u32..140, 0u32..60, any::<bool>()), 1..400)) {
            let mut index = FreeIndex::default();
            let mut reference: BTreeSet<(u32, u32)> = BTreeSet::new();
            let mut listed: Vec<Option<u32>> = vec![None; 140];
            for (node, free, insert) in ops {
                match (insert, listed[node as usize]) {
                    (true, None) => {
                        index.insert(node, free);
                        reference.insert((u32::MAX - free, node));
                        listed[node as usize] = Some(free);
                    }
                    (false, Some(f)) => {
                        index.remove(node, f);
                        reference.remove(&(u32::MAX - f, node));
                        listed[node as usize] = None;
                    }
                    _ => {}
                }
                let expected = reference
                    .first()
                    .filter(|&&(key, _)| key != u32::MAX)
                    .map(|&(key, node)| (u32::MAX - key, node));
                prop_assert_eq!(index.best(), expected);
                for (n, l) in listed.iter().enumerate() {
                    if let Some(f) = l {
                        prop_assert!(index.contains(n as u32, *f));
                    }
                }
            }
        }
    }

    #[test]
    fn a_full_node_is_listed_but_never_best() {
        let mut index = FreeIndex::default();
        index.insert(3, 0);
        assert!(index.contains(3, 0));
        assert_eq!(index.best(), None);
        index.insert(7, 2);
        index.insert(5, 2);
        assert_eq!(index.best(), Some((2, 5)));
        index.remove(5, 2);
        assert_eq!(index.best(), Some((2, 7)));
        index.remove(7, 2);
        assert_eq!(index.best(), None);
    }
}
