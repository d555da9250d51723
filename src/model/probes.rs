//! The deadline that kills a proxy still without a certificate — the kubelet's startup
//! probe, or `pilot-agent wait` in postStart ([`super::pods::kill_path`]) — kept for
//! all the pods of a cluster with one pending event instead of one per pod.
//!
//! Every deadline of a cluster is its agent's start plus the same `after` (the kill path
//! is fixed per cluster), so deadlines come in the order agents start: they wait in a
//! first-in first-out list, and one [`Event::ProbeDeadline`] per cluster is pending, at
//! the earliest deadline still live. A pod that gets its certificate strikes its entry
//! out (its slot is in the cache then: the handler has just read it), so at a deadline
//! only pods that may still be waiting are looked at; what happens to them is exactly
//! what the kill did (`pods::on_startup_probe_kill`, which checks the pod again). A
//! deadline due at the same nanosecond as another event may run before or after it in a
//! different order than a per-pod event would have (that event was queued at the start
//! of the agent, the cluster's timer at the previous deadline).
//!
//! Why: the per-pod event was a no-op for every pod that got its certificate within the
//! limit — 1.6 M of the 11.9 M events of the 2 M-pod scale scenario — and at 20 M pods
//! each one was a cache miss on a pod slot long out of the cache.

use std::collections::VecDeque;

use crate::engine::{Context, SimTime};

use super::event::Event;
use super::fleet::Fleet;
use super::state::PodRef;

/// One agent's deadline (16 bytes: a struck-out one has [`STRUCK`] for its pod).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: SimTime,
    pod: PodRef,
}

/// The pod of a struck-out deadline (no slot has this index).
const STRUCK: PodRef = PodRef {
    slot: u32::MAX,
    gen: u32::MAX,
};

impl Deadline {
    fn new(at: SimTime, pod: PodRef) -> Deadline {
        Deadline { at, pod }
    }

    /// Not struck out: the pod may still be waiting.
    fn live(&self) -> bool {
        self.pod != STRUCK
    }
}

/// A cluster's proxy deadlines. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct ProbeDeadlines {
    /// In order of `at` (pushes come in time order with one `after`).
    pending: VecDeque<Deadline>,
    /// The cluster's [`Event::ProbeDeadline`] is pending.
    armed: bool,
}

impl ProbeDeadlines {
    /// Deadlines waiting (live or struck out).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// `pod` got its certificate: its deadline `at` no longer applies.
    pub fn strike(&mut self, pod: PodRef, at: SimTime) {
        let first = self.first_at_or_after(at);
        for d in self.pending.range_mut(first..) {
            if d.at != at {
                break;
            }
            if d.pod == pod {
                d.pod = STRUCK;
                return;
            }
        }
    }

    /// The index of the first deadline at or after `at`. A certificate usually comes
    /// soon after its agent started, so its deadline is near the back: the search
    /// gallops from the back (O(log distance), on lines just written) rather than
    /// bisecting the whole list (cold lines at every step).
    fn first_at_or_after(&self, at: SimTime) -> usize {
        let n = self.pending.len();
        // Find a `lo` whose deadline is before `at` (or the front), doubling the step.
        let mut hi = n;
        let mut step = 1;
        let lo = loop {
            let Some(i) = hi.checked_sub(step) else {
                break 0;
            };
            if self.pending[i].at < at {
                break i + 1;
            }
            hi = i;
            step *= 2;
        };
        // Bisect [lo, hi): every deadline before `lo` is before `at`, from `hi` on not.
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.pending[mid].at < at {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Drops struck-out entries at the front, so the timer goes to a live one.
    fn trim(&mut self) {
        while self.pending.front().is_some_and(|d| !d.live()) {
            self.pending.pop_front();
        }
    }
}

/// `pod`'s agent started now: its proxy is killed at `now + after` unless it has its
/// certificate by then.
pub fn watch(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef, after: SimTime) {
    let at = ctx.now().saturating_add(after);
    let p = f.cluster_mut(cluster).probes_mut();
    p.pending.push_back(Deadline::new(at, pod));
    if !p.armed {
        p.armed = true;
        ctx.schedule_at(at, Event::ProbeDeadline { cluster });
    }
}

/// The cluster's timer: every live deadline due now kills its proxy if it still waits.
pub fn on_deadline(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let now = ctx.now();
    loop {
        let p = f.cluster_mut(cluster).probes_mut();
        let Some(d) = p.pending.front().copied().filter(|d| d.at <= now) else {
            break;
        };
        p.pending.pop_front();
        if d.live() {
            super::pods::on_startup_probe_kill(f, ctx, cluster, d.pod);
        }
    }
    let p = f.cluster_mut(cluster).probes_mut();
    p.trim();
    match p.pending.front() {
        Some(d) => ctx.schedule_at(d.at, Event::ProbeDeadline { cluster }),
        None => p.armed = false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(slot: u32, gen: u32) -> PodRef {
        PodRef { slot, gen }
    }

    /// A struck-out deadline is the pod's own, among others due at the same time, and
    /// the struck-out ones at the front are dropped before the timer is set again.
    #[test]
    fn strike_finds_the_pod_among_equal_deadlines_and_trim_skips_it() {
        let mut p = ProbeDeadlines::default();
        for (slot, at) in [(1, 10), (2, 10), (3, 10), (4, 20)] {
            p.pending
                .push_back(Deadline::new(SimTime(at), pod(slot, 7)));
        }
        p.strike(pod(2, 6), SimTime(10)); // another generation: not its deadline
        p.strike(pod(4, 7), SimTime(10)); // another time: not its deadline
        assert!(p.pending.iter().all(|d| d.live()));
        p.strike(pod(2, 7), SimTime(10));
        p.strike(pod(1, 7), SimTime(10));
        let live: Vec<u32> = p
            .pending
            .iter()
            .filter(|d| d.live())
            .map(|d| d.pod.slot)
            .collect();
        assert_eq!(live, [3, 4]);
        p.trim();
        assert_eq!(p.pending.front().map(|d| d.pod.slot), Some(3));
        assert_eq!(p.len(), 2);
    }

    proptest::proptest! {
        /// The galloping search finds what a bisection of the whole list finds.
        #[test]
        fn search_from_the_back_agrees_with_bisection(
            gaps in proptest::collection::vec(0u64..3, 0..200),
            at in 0u64..300,
        ) {
            let mut p = ProbeDeadlines::default();
            let mut t = 0;
            for (i, g) in gaps.iter().enumerate() {
                t += g;
                p.pending.push_back(Deadline::new(SimTime(t), pod(i as u32, 1)));
            }
            let expected = p.pending.partition_point(|d| d.at < SimTime(at));
            proptest::prop_assert_eq!(p.first_at_or_after(SimTime(at)), expected);
        }
    }
}
