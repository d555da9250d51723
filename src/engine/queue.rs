//! The pending-event set: a monotone multi-digit radix heap keyed by (time, insertion
//! sequence).
//!
//! # Structure
//! The kernel never schedules into the past (`Context` clamps to `now`), so every pushed
//! time is at least the time of the last popped event, `last`. An event at time `t` is
//! filed by the highest 5-bit digit in which `t` differs from `last`: bucket
//! `(level, digit)` = (position of that digit, `t`'s value there). Buckets are totally
//! ordered by `level * 32 + digit`: every time in a lower bucket is smaller than every
//! time in a higher one. Events at exactly `last` wait in `front`, a FIFO.
//!
//! To pop when `front` is empty, the first non-empty bucket (a bitmask finds it) is
//! scanned for its minimum `m`; `last` becomes `m` and the bucket's events are refiled
//! relative to `m`: those at `m` go to `front`, the others to strictly lower buckets
//! (they agree with `m` on the digit that filed them). So an event moves at most 13
//! times (once per level) and usually 2-3 times; there is no pathological input.
//!
//! # Order
//! Within a bucket, events are kept in insertion order: pushes append (and carry the
//! largest sequence number so far), and refiling walks one bucket in order into buckets
//! that are all empty (they lie below the first non-empty one). `front` inherits that
//! order, so events at equal times pop first-in first-out and the order depends only on
//! (time, insertion sequence), never on the bucket layout. No sequence number needs to
//! be stored.
//!
//! No `unsafe`.

use std::collections::VecDeque;

use super::SimTime;

/// Bits per digit.
const DIGIT: u32 = 5;
const RADIX: usize = 1 << DIGIT;
const LEVELS: usize = 64usize.div_ceil(DIGIT as usize);
const BUCKETS: usize = LEVELS * RADIX;
const MASK_WORDS: usize = BUCKETS.div_ceil(64);
/// Emptied buckets keep at most this many slots of capacity by default (bounds the
/// memory held beyond the pending events to `BUCKETS * KEEP_CAPACITY` entries).
const KEEP_CAPACITY: usize = 1024;
/// [`EventQueue::peek_cheap`] scans a first bucket of at most this many events.
const PEEK_SCAN: usize = 8;

/// The bucket of `t` relative to `last`, for `t > last`.
#[inline(always)]
fn bucket_of(t: u64, last: u64) -> usize {
    let level = (63 - (t ^ last).leading_zeros()) / DIGIT;
    level as usize * RADIX + ((t >> (level * DIGIT)) as usize & (RADIX - 1))
}

/// Events waiting to run, popped in (time, insertion sequence) order. Times pushed must
/// not lie before the last popped time (the engine guarantees it by clamping).
pub struct EventQueue<E> {
    /// Events at exactly `last`, in insertion order.
    front: VecDeque<E>,
    /// `buckets[b]`: (time, event) in insertion order, all times above `last`.
    buckets: Box<[Vec<(u64, E)>]>,
    /// Bit `b` set iff `buckets[b]` is non-empty.
    occupied: [u64; MASK_WORDS],
    /// The last popped time (or the time `front` holds); every pending time is >= it.
    last: u64,
    len: usize,
    /// Emptied buckets keep at most this much capacity.
    keep_capacity: usize,
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::with_kept_capacity(KEEP_CAPACITY)
    }

    /// An empty queue whose emptied buckets keep at most `keep` slots of capacity each
    /// (a queue among thousands keeps less).
    pub fn with_kept_capacity(keep: usize) -> Self {
        EventQueue {
            keep_capacity: keep,
            front: VecDeque::new(),
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; MASK_WORDS],
            last: 0,
            len: 0,
        }
    }

    /// Adds an event at `time`; among equal times it runs after those added before it.
    ///
    /// # Panics
    /// If `time` is before the last popped time (the kernel clamps such schedules to now).
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let t = time.as_nanos();
        assert!(
            t >= self.last,
            "event queue: push at {t} ns, before the last popped time {} ns",
            self.last
        );
        self.len += 1;
        if t == self.last {
            self.front.push_back(event);
        } else {
            let b = bucket_of(t, self.last);
            self.buckets[b].push((t, event));
            self.occupied[b / 64] |= 1 << (b % 64);
        }
    }

    /// Removes and returns the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.pop_where(|_| true, |_, _| true).ok()
    }

    /// Removes and returns the earliest event if its time is before `horizon`; `None`
    /// when the queue is empty or the earliest event is at or after `horizon` (the queue
    /// is then left as it was, so later pushes may use any time from the last popped one).
    #[inline]
    pub fn pop_before(&mut self, horizon: SimTime) -> Option<(SimTime, E)> {
        self.pop_where(|t| t < horizon.as_nanos(), |_, _| true).ok()
    }

    /// Removes and returns the earliest event if its time is at or before `limit` and
    /// `accept(time, event)` holds; otherwise `Err` with the earliest event's time
    /// (`None` when the queue is empty). Later pushes may use any time from `limit` on
    /// (or from the last popped time, if later).
    #[inline]
    pub fn pop_at_or_before_if(
        &mut self,
        limit: SimTime,
        accept: impl Fn(u64, &E) -> bool,
    ) -> Result<(SimTime, E), Option<SimTime>> {
        self.pop_where(|t| t <= limit.as_nanos(), accept)
            .map_err(|t| t.map(SimTime))
    }

    /// The earliest event and its time, if that time is before `horizon` (the queue may
    /// reorganise itself up to that time, as a pop would).
    #[inline]
    pub fn peek_before(&mut self, horizon: SimTime) -> Option<(SimTime, &E)> {
        let time_ok = |t: u64| t < horizon.as_nanos();
        if self.front.is_empty() {
            if self.len == 0 {
                return None;
            }
            let b = self.first_bucket();
            if self.buckets[b].len() == 1 {
                let (t, ref e) = self.buckets[b][0];
                return time_ok(t).then_some((SimTime(t), e));
            }
            if self.refill(b, &time_ok).is_err() {
                return None;
            }
        }
        let head = self.front.front().expect("front filled");
        time_ok(self.last).then_some((SimTime(self.last), head))
    }

    /// Pops the earliest event if its time passes `time_ok` and it passes `accept`. The
    /// queue may reorganise itself up to a time that passes `time_ok` (which then becomes
    /// `last`) even when `accept` refuses the event: `time_ok` must accept only times
    /// that later pushes do not undercut.
    /// `Err` carries the earliest time when it is refused (`None`: empty).
    #[inline(always)]
    fn pop_where(
        &mut self,
        time_ok: impl Fn(u64) -> bool,
        accept: impl Fn(u64, &E) -> bool,
    ) -> Result<(SimTime, E), Option<u64>> {
        if self.front.is_empty() {
            if self.len == 0 {
                return Err(None);
            }
            let b = self.first_bucket();
            let bucket = &mut self.buckets[b];
            if bucket.len() == 1 {
                // The common case near the front: a lone earliest event is popped
                // directly, without passing through `front`.
                let (t, ref e) = bucket[0];
                if !time_ok(t) || !accept(t, e) {
                    return Err(Some(t));
                }
                let (t, e) = bucket.pop().expect("one event");
                self.occupied[b / 64] &= !(1 << (b % 64));
                self.last = t;
                self.len -= 1;
                return Ok((SimTime(t), e));
            }
            self.refill(b, &time_ok).map_err(Some)?;
        }
        let head = self.front.front().expect("front filled");
        if !time_ok(self.last) || !accept(self.last, head) {
            return Err(Some(self.last));
        }
        self.len -= 1;
        let e = self.front.pop_front().expect("front filled");
        if self.front.is_empty() && self.front.capacity() > self.keep_capacity {
            self.front = VecDeque::new();
        }
        Ok((SimTime(self.last), e))
    }

    /// The first non-empty bucket; requires `front` empty and `len > 0`.
    #[inline]
    fn first_bucket(&self) -> usize {
        let mut w = 0;
        while self.occupied[w] == 0 {
            w += 1;
        }
        w * 64 + self.occupied[w].trailing_zeros() as usize
    }

    /// With `front` empty and `b` the first non-empty bucket: if the earliest pending
    /// time is accepted, makes it `last` and refiles bucket `b` (filling `front`);
    /// otherwise changes nothing and returns that time.
    #[inline(never)]
    fn refill(&mut self, b: usize, time_ok: &impl Fn(u64) -> bool) -> Result<(), u64> {
        let mut bucket = std::mem::take(&mut self.buckets[b]);
        let m = bucket
            .iter()
            .map(|&(t, _)| t)
            .min()
            .expect("occupied bucket");
        if !time_ok(m) {
            self.buckets[b] = bucket;
            return Err(m);
        }
        self.occupied[b / 64] &= !(1 << (b % 64));
        self.last = m;
        if b < RADIX {
            // Level 0: the bucket holds a single time.
            self.front.extend(bucket.drain(..).map(|(_, e)| e));
        } else {
            for (t, e) in bucket.drain(..) {
                if t == m {
                    self.front.push_back(e);
                } else {
                    let nb = bucket_of(t, m);
                    self.buckets[nb].push((t, e));
                    self.occupied[nb / 64] |= 1 << (nb % 64);
                }
            }
        }
        // Put the emptied vector back to keep its capacity, unless it is large: every
        // bucket in turn can see a large share of the pending events, and keeping all
        // those peaks would hold ~10-30x the pending set in memory.
        if bucket.capacity() <= self.keep_capacity {
            self.buckets[b] = bucket;
        }
        Ok(())
    }

    /// The earliest event, when finding it costs no more than a few comparisons: the
    /// head of `front`, the first event of the first non-empty bucket at level 0 (all at
    /// one time), or the earliest of a first bucket of at most [`PEEK_SCAN`] events.
    /// `None` when a larger bucket would have to be scanned (the next pop does it). For
    /// hints only (the kernel's prefetch): the order of pops is not affected.
    #[inline]
    pub fn peek_cheap(&self) -> Option<&E> {
        if let Some(e) = self.front.front() {
            return Some(e);
        }
        if self.len == 0 {
            return None;
        }
        let b = self.first_bucket();
        let bucket = &self.buckets[b];
        if b < RADIX || bucket.len() == 1 {
            return bucket.first().map(|(_, e)| e);
        }
        if bucket.len() > PEEK_SCAN {
            return None;
        }
        // The first of the earliest: insertion order breaks ties.
        let mut best = &bucket[0];
        for x in &bucket[1..] {
            if x.0 < best.0 {
                best = x;
            }
        }
        Some(&best.1)
    }

    /// Prefetches what the next pop reads, a level a step (a hint; see
    /// [`super::Model::prefetch_partition`]): the queue itself at `ahead` >= 3; where
    /// its earliest events are kept at 2 (`front`'s head, or the first bucket's
    /// header); the first lines of that bucket's events at 1.
    #[inline]
    pub fn prefetch_front(&self, ahead: u32) {
        if ahead >= 3 {
            super::prefetch_all(self);
            return;
        }
        if let Some(e) = self.front.front() {
            if ahead == 2 {
                super::prefetch(e);
            }
            return;
        }
        if self.len == 0 {
            return;
        }
        let bucket = &self.buckets[self.first_bucket()];
        if ahead == 2 {
            super::prefetch(bucket);
        } else {
            // A bucket is scanned whole when it holds more than one event: its first
            // few events.
            for e in bucket.iter().take(4) {
                super::prefetch(e);
            }
        }
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<SimTime> {
        if !self.front.is_empty() {
            Some(SimTime(self.last))
        } else if self.len == 0 {
            None
        } else {
            let b = self.first_bucket();
            self.buckets[b].iter().map(|&(t, _)| SimTime(t)).min()
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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

    /// Runs `ops` against the queue and a sorted reference. Each op is (delay, pop): a
    /// push at `last popped + delay` (times never go back, as in the engine) or a pop.
    fn check(ops: Vec<(u64, bool)>, horizon_every: usize) -> Result<(), TestCaseError> {
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, id), kept sorted
        let mut now = 0u64;
        for (id, (delay, pop)) in ops.into_iter().enumerate() {
            if pop && !reference.is_empty() {
                if horizon_every > 0 && id % horizon_every == 0 {
                    // A horizon at or before the earliest time must leave the queue as is.
                    let h = reference[0].0.saturating_sub(id as u64 % 3);
                    prop_assert!(q.pop_before(SimTime(h)).is_none());
                }
                let (rt, rid) = reference.remove(0);
                let peeked = q.peek_cheap().copied();
                let (qt, qid) = q.pop_before(SimTime::MAX).or_else(|| q.pop()).unwrap();
                // A cheap peek, when it answers, names the event popped next.
                if let Some(p) = peeked {
                    prop_assert_eq!(p, qid);
                }
                prop_assert_eq!((qt.as_nanos(), qid), (rt, rid));
                now = rt;
            } else {
                let t = now.saturating_add(delay);
                q.push(SimTime(t), id as u64);
                let pos = reference.partition_point(|&(rt, _)| rt <= t);
                reference.insert(pos, (t, id as u64));
            }
            prop_assert_eq!(q.len(), reference.len());
            prop_assert_eq!(
                q.peek_time().map(|s| s.as_nanos()),
                reference.first().map(|r| r.0)
            );
            // The prefetch hints read the queue in every state it passes through
            // (empty, `front` filled, only buckets) and must not panic.
            for ahead in 1..=3 {
                q.prefetch_front(ahead);
            }
        }
        while let Some((t, id)) = q.pop() {
            let (rt, rid) = reference.remove(0);
            prop_assert_eq!((t.as_nanos(), id), (rt, rid));
        }
        prop_assert!(reference.is_empty() && q.is_empty());
        Ok(())
    }

    fn delay() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => 0u64..4,                 // many equal times
            3 => 0u64..200,
            2 => 0u64..1 << 40,
            1 => any::<u64>(),            // up to the end of time (saturates at MAX)
            1 => Just(u64::MAX),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against a sorted reference: pops come out in (time, insertion) order whatever
        /// the interleaving of pushes and pops.
        #[test]
        fn pops_in_time_then_insertion_order(ops in proptest::collection::vec((delay(), any::<bool>()), 1..600)) {
            check(ops, 0)?;
        }

        /// Same, with horizons that must not disturb the queue.
        #[test]
        fn horizon_leaves_queue_intact(ops in proptest::collection::vec((delay(), any::<bool>()), 1..600)) {
            check(ops, 3)?;
        }

        /// Bursts: pushes at a handful of times, popped in interleaved runs.
        #[test]
        fn bursts_of_equal_times(ops in proptest::collection::vec((prop_oneof![0u64..2, Just(1u64 << 33)], proptest::bool::weighted(0.3)), 1..2000)) {
            check(ops, 0)?;
        }
    }

    /// A burst at one time passes through `front`; emptied, it gives the capacity back
    /// (a fleet has thousands of queues: kept, bursts held ~8 % of scale-2000's memory).
    #[test]
    fn an_emptied_front_keeps_no_more_than_the_kept_capacity() {
        let mut q = EventQueue::with_kept_capacity(64);
        for i in 0..10_000u32 {
            q.push(SimTime(5), i);
        }
        for i in 0..10_000u32 {
            assert_eq!(q.pop(), Some((SimTime(5), i)));
            if i == 0 {
                assert!(q.front.capacity() >= 9_999);
            }
        }
        assert!(q.is_empty());
        assert!(q.front.capacity() <= 64, "{}", q.front.capacity());
    }

    #[test]
    fn equal_times_are_fifo_across_refiles() {
        let mut q = EventQueue::new();
        for i in 0..1000u64 {
            q.push(SimTime(1_000_000 + (i % 7) * 1_000), i);
        }
        let mut out = Vec::new();
        while let Some((t, i)) = q.pop() {
            out.push((t.as_nanos(), i));
        }
        let mut expected = out.clone();
        expected.sort();
        assert_eq!(out, expected);
        assert_eq!(out.len(), 1000);
    }

    #[test]
    #[should_panic(expected = "before the last popped time")]
    fn push_into_the_past_panics() {
        let mut q = EventQueue::new();
        q.push(SimTime(10), 0);
        q.pop();
        q.push(SimTime(9), 1);
    }
}
