//! The pending-event set: a min-heap keyed by (time, insertion sequence).
//!
//! A 4-ary heap kept in two parallel arrays: the 16-byte keys (`time << 64 | seq`), so
//! the four children compared at each level share one cache line, and the events, which
//! move along with their keys. Sifting uses a hole (each entry moves once per level, no
//! swaps). Keys are unique (the sequence number is), so the order is total and does not
//! depend on the heap's shape: equal times pop first-in first-out.
//!
//! The two arrays always have the same length; `unsafe` is confined to moving events
//! into and out of the hole, with no code that can panic while a hole is open.

use std::ptr;

use super::SimTime;

const ARITY: usize = 4;

/// `if pick_second == 1 { b } else { a }` without a branch.
#[inline(always)]
fn select(pick_second: usize, a: u128, b: u128) -> u128 {
    let mask = (pick_second as u128).wrapping_neg();
    (a & !mask) | (b & mask)
}

/// `if pick_second == 1 { b } else { a }` without a branch.
#[inline(always)]
fn select_usize(pick_second: usize, a: usize, b: usize) -> usize {
    let mask = pick_second.wrapping_neg();
    (a & !mask) | (b & mask)
}

/// Events waiting to run, popped in (time, insertion sequence) order.
pub struct EventQueue<E> {
    /// Heap-ordered keys: `time << 64 | seq`.
    keys: Vec<u128>,
    /// `events[i]` belongs to `keys[i]`.
    events: Vec<E>,
    next_seq: u64,
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            keys: Vec::new(),
            events: Vec::new(),
            next_seq: 0,
        }
    }

    /// Adds an event at `time`; among equal times it runs after those added before it.
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let key = ((time.as_nanos() as u128) << 64) | self.next_seq as u128;
        self.next_seq += 1;
        let mut i = self.keys.len();
        self.keys.push(key);
        self.events.push(event);
        // SAFETY: both arrays have length i + 1 and every index used is <= i. The new
        // event is read out of index i (opening a hole there); each step moves the
        // parent's event into the hole and the hole to the parent; finally the event is
        // written back into the hole. Nothing in between can panic.
        unsafe {
            let kp = self.keys.as_mut_ptr();
            let ep = self.events.as_mut_ptr();
            let moving = ptr::read(ep.add(i));
            while i > 0 {
                let parent = (i - 1) / ARITY;
                let pk = *kp.add(parent);
                if pk <= key {
                    break;
                }
                *kp.add(i) = pk;
                ptr::copy_nonoverlapping(ep.add(parent), ep.add(i), 1);
                i = parent;
            }
            *kp.add(i) = key;
            ptr::write(ep.add(i), moving);
        }
    }

    /// Removes and returns the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let len = self.keys.len();
        if len == 0 {
            return None;
        }
        let n = len - 1;
        // SAFETY: len >= 1. The root event is read out (index 0 becomes a hole); when
        // n == 0 that was the only entry and the lengths drop to 0. Otherwise the last
        // entry (index n, distinct from 0) is read out and the lengths drop to n, so
        // indices 0..n hold one hole (at i) and initialised events elsewhere; each step
        // moves the smallest child's event into the hole; finally the last event fills
        // the hole. All indices used are < n. Nothing in between can panic.
        unsafe {
            let kp = self.keys.as_mut_ptr();
            let ep = self.events.as_mut_ptr();
            let top_key = *kp;
            let top = ptr::read(ep);
            self.keys.set_len(n);
            self.events.set_len(n);
            if n > 0 {
                let last_key = *kp.add(n);
                let last = ptr::read(ep.add(n));
                let mut i = 0;
                loop {
                    let first = i * ARITY + 1;
                    if first >= n {
                        break;
                    }
                    let (best, best_key) = if first + ARITY <= n {
                        // Full set of children: a branch-free tournament (the compares
                        // are unpredictable, so selects beat branches).
                        let k0 = *kp.add(first);
                        let k1 = *kp.add(first + 1);
                        let k2 = *kp.add(first + 2);
                        let k3 = *kp.add(first + 3);
                        let a = (k1 < k0) as usize;
                        let (ia, ka) = (first + a, select(a, k0, k1));
                        let b = (k3 < k2) as usize;
                        let (ib, kb) = (first + 2 + b, select(b, k2, k3));
                        let c = (kb < ka) as usize;
                        (select_usize(c, ia, ib), select(c, ka, kb))
                    } else {
                        let mut best = first;
                        let mut best_key = *kp.add(first);
                        for c in first + 1..n {
                            let k = *kp.add(c);
                            if k < best_key {
                                best = c;
                                best_key = k;
                            }
                        }
                        (best, best_key)
                    };
                    if best_key >= last_key {
                        break;
                    }
                    *kp.add(i) = best_key;
                    ptr::copy_nonoverlapping(ep.add(best), ep.add(i), 1);
                    i = best;
                }
                *kp.add(i) = last_key;
                ptr::write(ep.add(i), last);
            }
            Some((SimTime((top_key >> 64) as u64), top))
        }
    }

    /// The time of the earliest event.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        self.keys.first().map(|k| SimTime((k >> 64) as u64))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a sorted reference: pops come out in (time, insertion) order whatever
        /// the interleaving of pushes and pops.
        #[test]
        fn pops_in_time_then_insertion_order(ops in proptest::collection::vec((0u64..50, any::<bool>()), 1..400)) {
            let mut q = EventQueue::new();
            let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, id), kept sorted
            for (id, (t, pop)) in ops.into_iter().enumerate() {
                if pop && !reference.is_empty() {
                    let (rt, rid) = reference.remove(0);
                    let (qt, qid) = q.pop().unwrap();
                    prop_assert_eq!((qt.as_nanos(), qid), (rt, rid));
                } else {
                    // Times never go below the last popped time in the engine; here any
                    // order is allowed, the queue must still be exact.
                    q.push(SimTime(t), id as u64);
                    let pos = reference.partition_point(|&(rt, _)| rt <= t);
                    reference.insert(pos, (t, id as u64));
                }
                prop_assert_eq!(q.len(), reference.len());
                prop_assert_eq!(q.peek_time().map(|s| s.as_nanos()), reference.first().map(|r| r.0));
            }
            while let Some((t, id)) = q.pop() {
                let (rt, rid) = reference.remove(0);
                prop_assert_eq!((t.as_nanos(), id), (rt, rid));
            }
            prop_assert!(reference.is_empty() && q.is_empty());
        }
    }
}
