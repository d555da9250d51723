//! A CA whose every request's fate is settled the moment it is submitted: `c` identical
//! workers serving first-in first-out, with nothing that changes their speed or number
//! during the run (no USL contention, no failed-object slowdown, no rate limit, no
//! capacity change, no withdrawal).
//!
//! # Why the fate is known at submission
//! Under those conditions a worker, once it starts a job of work `S` at `s`, is busy
//! exactly until `s + S`, and FIFO hands the next free worker to the oldest waiting
//! request. So request `n`, submitted at `a`, starts at `max(a, f)` where `f` is the
//! earliest time a worker is free once every earlier request has been placed (the
//! Kiefer-Wolfowitz recursion of the G/G/c queue): nothing submitted after it can change
//! that. Its deadline then settles the rest:
//! - `Cancel`: it reneges at its deadline `d` if it would start after `d`, and then takes
//!   no worker; otherwise it is served.
//! - `Keep`: it is always served; its client gives up at `d` if the work completes after
//!   `d`.
//!
//! Service times are drawn in the order requests are placed on a worker, which is FIFO
//! start order: the k-th request to start gets the k-th draw of the stream, as in
//! [`CertificateAuthority`](super::CertificateAuthority).
//!
//! # Instants that coincide
//! The event-driven CA orders events at one instant by when they were scheduled (the
//! engine's FIFO rule). Here the events it would have had are virtual, so each submission
//! passes `posted`, when the event that submits it was scheduled, and the CA compares it
//! with when its own would-be events were: a completion is scheduled when its job
//! starts, a deadline when its request is submitted. Then, as in the event-driven CA:
//! - a worker freeing at the submission instant serves the request at once if that
//!   completion was scheduled no later than `posted`; otherwise the request waits for
//!   it, for no time (it is counted in the queue, and is not "started at once");
//! - `Keep`, work completing exactly at the deadline: in time if the request started at
//!   once (its completion was scheduled before its deadline), late otherwise;
//! - `Cancel`, a worker freeing exactly at the deadline: served if that worker's job
//!   started no later than the request was submitted, reneged if it started after;
//! - the queue length a submission sees (for the peak) still counts a request leaving at
//!   that instant if the event taking it out was scheduled after `posted`;
//! - `Cancel` with no patience at all (the deadline is the submission instant) and no
//!   free worker: the request reneges at once but counts as waiting until the owner calls
//!   [`FifoServers::left_at_once`], from an event it schedules for that instant (where
//!   the event-driven CA's deadline would run).
//!
//! Ties between two events scheduled at the same instant are taken in the order the
//! event-driven CA schedules them within one handler (a deadline before the next
//! arrival). `standalone`'s tests compare both CAs on thousands of random runs,
//! including rates at which arrivals share nanoseconds.
//!
//! # Time integrals
//! Busy worker-time and queue length are integrated exactly, in nanoseconds, as the
//! event-driven CA does: each request's queue interval and each job's service interval is
//! known when it is submitted and added whole; the part that lies after a query time `t`
//! is subtracted. For the workers that part is `sum max(0, free_w - t)`, because a
//! worker can only stand idle until a submission time, all of which lie before `t`.
//!
//! # Memory
//! One entry per worker (16 bytes) and one exit per waiting request (16 bytes).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::{OnTimeout, ServiceTime};
use crate::engine::{RngStream, SimTime};

/// What becomes of one submitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// When service starts (`None`: it reneged and never starts).
    pub started: Option<SimTime>,
    /// When its work completes (`None`: it reneged).
    pub completes: Option<SimTime>,
    /// When its client gives up on it: the deadline, if it reneged (`Cancel`) or its
    /// work completes after the deadline (`Keep`; the request is then served late).
    pub gives_up: Option<SimTime>,
    /// It reneged at the instant it was submitted: call
    /// [`FifoServers::left_at_once`] from an event at that instant.
    pub left_at_once: bool,
}

/// A waiting request's way out of the queue: when it leaves (starts or reneges) and when
/// the event-driven CA would have scheduled the event that takes it out (the freeing
/// worker's job start, or its own submission for a deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Exit {
    at: u64,
    posted: u64,
}

/// The waiting requests' exits. They come in submission order, which is also time order
/// unless patience varies under `Cancel`; the deque turns into a heap the first time
/// they do not.
#[derive(Debug, Clone)]
enum Exits {
    InOrder(VecDeque<Exit>),
    Heap(BinaryHeap<Reverse<Exit>>),
}

/// The workers as a min-heap of `free at << 64 | start of its last job`: the earliest
/// free on top, and among those freeing together the one whose job started first (its
/// completion would run first in the engine).
#[derive(Debug, Clone)]
struct Workers(BinaryHeap<Reverse<u128>>);

impl Workers {
    fn idle(n: usize) -> Workers {
        Workers(std::iter::repeat_n(Reverse(0), n).collect())
    }

    /// (free at, start of its last job) of the top worker.
    #[inline]
    fn first(&self) -> (u64, u64) {
        let Reverse(w) = *self.0.peek().expect("at least one worker");
        ((w >> 64) as u64, w as u64)
    }

    /// Gives the top worker a job from `start` to `free`.
    #[inline]
    fn replace_first(&mut self, free: u64, start: u64) {
        *self.0.peek_mut().expect("at least one worker") =
            Reverse((free as u128) << 64 | start as u128);
    }

    /// The free-at times.
    fn free_times(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|&Reverse(w)| (w >> 64) as u64)
    }
}

/// `c` FIFO workers that settle each request at submission. See the module docs.
#[derive(Debug, Clone)]
pub struct FifoServers {
    service: ServiceTime,
    rng: RngStream,
    workers: Workers,
    exits: Exits,
    /// Sum of the pending exit times.
    exits_sum: u128,
    /// Service time of every job placed so far (ns).
    busy_placed_ns: u128,
    /// Queue time of every request submitted so far (ns).
    queue_placed_ns: u128,
    /// Requests without patience that reneged at once and still count as waiting.
    leaving_at_once: u64,
    peak_queue: u64,
    /// Service times drawn ahead, in draw order: `ahead[next..]` are the next ones.
    ahead: [u64; AHEAD],
    next: usize,
}

/// Service times drawn at a time: the draws are independent of everything else, so
/// taking them in blocks gives the same sequence with less waiting on each draw.
const AHEAD: usize = 32;

impl FifoServers {
    /// `workers` idle workers (>= 1) drawing service times from `rng`.
    pub fn new(workers: u32, service: ServiceTime, rng: RngStream) -> FifoServers {
        let workers = workers.max(1) as usize;
        FifoServers {
            service,
            rng,
            workers: Workers::idle(workers),
            exits: Exits::InOrder(VecDeque::new()),
            exits_sum: 0,
            busy_placed_ns: 0,
            queue_placed_ns: 0,
            leaving_at_once: 0,
            peak_queue: 0,
            ahead: [0; AHEAD],
            next: AHEAD,
        }
    }

    /// The next service time of the stream.
    #[inline]
    fn next_work(&mut self) -> SimTime {
        if self.next == AHEAD {
            self.draw_ahead();
        }
        let w = self.ahead[self.next];
        self.next += 1;
        SimTime(w)
    }

    #[inline(never)]
    fn draw_ahead(&mut self) {
        for w in self.ahead.iter_mut() {
            *w = self.service.sample(&mut self.rng).as_nanos();
        }
        self.next = 0;
    }

    /// Submits a request at `now` (never before an earlier submission) with the client's
    /// absolute `deadline` (`None`: waits forever) and returns its fate. `posted` is when
    /// the event that submits it was scheduled: with the times of the CA's own would-be
    /// events it orders instants that coincide as the engine would (module docs).
    #[inline]
    pub fn submit(
        &mut self,
        now: SimTime,
        posted: SimTime,
        deadline: Option<SimTime>,
        on_timeout: OnTimeout,
    ) -> Fate {
        let (a, p) = (now.as_nanos(), posted.as_nanos());
        self.drain_exits(a, false);
        let (free, last_start) = self.workers.first();
        // A worker freeing now serves at once if its completion was scheduled first;
        // otherwise the request waits for that completion, for no time.
        let at_once = free < a || (free == a && last_start <= p);
        let start = a.max(free);
        if let (Some(d), OnTimeout::Cancel) = (deadline, on_timeout) {
            let d = d.as_nanos().max(a);
            if start > d || (start == d && start > a && last_start > a) {
                let left_at_once = d == a;
                if left_at_once {
                    self.leaving_at_once += 1;
                    self.peak_queue = self.peak_queue.max(self.waiting_seen_by(a, p));
                } else {
                    self.wait(a, p, Exit { at: d, posted: a });
                }
                return Fate {
                    started: None,
                    completes: None,
                    gives_up: Some(SimTime(d)),
                    left_at_once,
                };
            }
        }
        let work = self.next_work();
        let completes = SimTime(start).saturating_add(work);
        self.busy_placed_ns += (completes.as_nanos() - start) as u128;
        self.workers.replace_first(completes.as_nanos(), start);
        if !at_once {
            self.wait(
                a,
                p,
                Exit {
                    at: start,
                    posted: last_start,
                },
            );
        }
        let gives_up = match (deadline, on_timeout) {
            (Some(d), OnTimeout::Keep) => {
                // Completing at the deadline is in time only if the completion was
                // scheduled first, i.e. the request started at its submission.
                let late = completes > d || (completes == d && !at_once);
                late.then_some(d)
            }
            _ => None,
        };
        Fate {
            started: Some(SimTime(start)),
            completes: Some(completes),
            gives_up,
            left_at_once: false,
        }
    }

    /// A request whose fate had `left_at_once` is no longer in the queue.
    pub fn left_at_once(&mut self) {
        self.leaving_at_once -= 1;
    }

    /// Records a request submitted at `a` (by an event posted at `p`) that waits.
    #[inline]
    fn wait(&mut self, a: u64, p: u64, exit: Exit) {
        self.queue_placed_ns += (exit.at - a) as u128;
        self.exits_sum += exit.at as u128;
        match &mut self.exits {
            Exits::InOrder(q) if q.back().is_none_or(|b| b.at <= exit.at) => q.push_back(exit),
            Exits::InOrder(q) => {
                let mut heap: BinaryHeap<_> = std::mem::take(q).into_iter().map(Reverse).collect();
                heap.push(Reverse(exit));
                self.exits = Exits::Heap(heap);
            }
            Exits::Heap(h) => h.push(Reverse(exit)),
        }
        if self.queue_len() > self.peak_queue {
            let seen = self.waiting_seen_by(a, p);
            self.peak_queue = self.peak_queue.max(seen);
        }
    }

    /// Requests waiting as a submission at `a` by an event posted at `p` sees them: those
    /// leaving at `a` are gone if the event taking them out was posted no later.
    #[inline]
    fn waiting_seen_by(&mut self, a: u64, p: u64) -> u64 {
        let mut gone = 0;
        match &mut self.exits {
            Exits::InOrder(q) if q.front().is_none_or(|e| e.at != a) => {}
            Exits::InOrder(q) => {
                for e in q.iter() {
                    if e.at != a {
                        break;
                    }
                    gone += (e.posted <= p) as u64;
                }
            }
            Exits::Heap(h) => {
                if h.peek().is_some_and(|e| e.0.at == a) {
                    let mut now = Vec::new();
                    while let Some(&Reverse(e)) = h.peek() {
                        if e.at != a {
                            break;
                        }
                        now.push(e);
                        h.pop();
                    }
                    gone = now.iter().filter(|e| e.posted <= p).count() as u64;
                    h.extend(now.into_iter().map(Reverse));
                }
            }
        }
        self.queue_len() - gone
    }

    /// Forgets the exits before `t` (and at `t` if `inclusive`).
    #[inline]
    fn drain_exits(&mut self, t: u64, inclusive: bool) {
        let gone = |e: &Exit| e.at < t || (inclusive && e.at == t);
        match &mut self.exits {
            Exits::InOrder(q) => {
                while let Some(e) = q.front() {
                    if !gone(e) {
                        break;
                    }
                    self.exits_sum -= e.at as u128;
                    q.pop_front();
                }
            }
            Exits::Heap(h) => {
                while let Some(Reverse(e)) = h.peek() {
                    if !gone(e) {
                        break;
                    }
                    self.exits_sum -= e.at as u128;
                    h.pop();
                }
            }
        }
    }

    /// Requests waiting at the last submission or query (counting those leaving then).
    pub fn queue_len(&self) -> u64 {
        self.leaving_at_once
            + match &self.exits {
                Exits::InOrder(q) => q.len() as u64,
                Exits::Heap(h) => h.len() as u64,
            }
    }

    /// Requests still waiting at `t` (leaving at `t` or later), for `t` at or after the
    /// last submission: the queue at the end of a run whose horizon is `t`.
    pub fn queue_len_before(&mut self, t: SimTime) -> u64 {
        self.drain_exits(t.as_nanos(), false);
        self.queue_len()
    }

    /// The largest queue length right after a submission.
    pub fn peak_queue(&self) -> u64 {
        self.peak_queue
    }

    /// Integral of the number of requests in service over `[0, t)`, in worker-seconds,
    /// for `t` at or after the last submission.
    pub fn busy_worker_seconds(&self, t: SimTime) -> f64 {
        let t = t.as_nanos();
        let ahead: u128 = (self.workers.free_times())
            .map(|free| free.saturating_sub(t) as u128)
            .sum();
        (self.busy_placed_ns - ahead) as f64 / 1e9
    }

    /// Integral of the queue length over `[0, t)`, in request-seconds, for `t` at or
    /// after the last submission.
    pub fn queue_seconds(&mut self, t: SimTime) -> f64 {
        let t = t.as_nanos();
        // Exits at `t` stay: a request leaving at the horizon still waits at the end.
        self.drain_exits(t, false);
        let waiting = self.queue_len() - self.leaving_at_once;
        let ahead = self.exits_sum - waiting as u128 * t as u128;
        (self.queue_placed_ns - ahead) as f64 / 1e9
    }

    /// Approximate bytes held (capacity of the worker heap and the queue).
    pub fn memory_bytes(&self) -> u64 {
        let workers = self.workers.0.capacity() * std::mem::size_of::<u128>();
        let exits = match &self.exits {
            Exits::InOrder(q) => q.capacity(),
            Exits::Heap(h) => h.capacity(),
        } * std::mem::size_of::<Exit>();
        (workers + exits) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng;

    fn ms(x: u64) -> SimTime {
        SimTime::from_millis(x)
    }

    fn constant(x: u64) -> ServiceTime {
        ServiceTime::Constant { value: ms(x) }
    }

    #[test]
    fn starts_at_the_earliest_free_worker_in_fifo_order() {
        let mut f = FifoServers::new(2, constant(1000), rng::stream(1, 1));
        let start =
            |f: &mut FifoServers, t| f.submit(ms(t), ms(t), None, OnTimeout::Cancel).started;
        assert_eq!(start(&mut f, 0), Some(ms(0)));
        assert_eq!(start(&mut f, 0), Some(ms(0)));
        assert_eq!(start(&mut f, 0), Some(ms(1000)));
        assert_eq!(start(&mut f, 500), Some(ms(1000)));
        assert_eq!(start(&mut f, 500), Some(ms(2000)));
        assert_eq!(f.peak_queue(), 3);
        // Busy: five jobs of 1 s, of which [0, 2 s) holds 4 s; queue: 1 + 0.5 + 1.5 s.
        assert!((f.busy_worker_seconds(ms(2000)) - 4.0).abs() < 1e-12);
        assert!((f.queue_seconds(ms(2000)) - 3.0).abs() < 1e-12);
        assert!((f.queue_seconds(ms(1500)) - 2.5).abs() < 1e-12);
        assert_eq!(
            f.queue_len_before(ms(2000)),
            1,
            "the last one starts at 2 s"
        );
        assert_eq!(f.queue_len_before(ms(2001)), 0);
    }

    #[test]
    fn cancel_reneges_without_taking_a_worker() {
        let mut f = FifoServers::new(1, constant(1000), rng::stream(1, 1));
        let d = |t| Some(ms(t));
        assert_eq!(
            f.submit(ms(0), ms(0), d(100), OnTimeout::Cancel).completes,
            Some(ms(1000))
        );
        let r = f.submit(ms(100), ms(100), d(200), OnTimeout::Cancel);
        assert_eq!((r.started, r.gives_up), (None, Some(ms(200))));
        // The worker is still free at 1 s for the next one.
        assert_eq!(
            f.submit(ms(300), ms(300), d(5000), OnTimeout::Cancel)
                .started,
            Some(ms(1000))
        );
        // Deadline exactly when the worker frees (2 s): the job on it started at 1 s,
        // after this submission at 400 ms, so the deadline came first: it reneges.
        let r = f.submit(ms(400), ms(400), d(2000), OnTimeout::Cancel);
        assert_eq!(r.gives_up, Some(ms(2000)));
        // Worker's job (started 1 s) frees at 2 s; a request submitted at 1.5 s with
        // that deadline is served: the job started before it was submitted.
        let r = f.submit(ms(1500), ms(1500), d(2000), OnTimeout::Cancel);
        assert_eq!((r.started, r.gives_up), (Some(ms(2000)), None));
    }

    #[test]
    fn keep_serves_late_and_an_immediate_start_completing_at_the_deadline_is_in_time() {
        let mut f = FifoServers::new(1, constant(1000), rng::stream(1, 1));
        let r = f.submit(ms(0), ms(0), Some(ms(1000)), OnTimeout::Keep);
        assert_eq!((r.completes, r.gives_up), (Some(ms(1000)), None));
        let r = f.submit(ms(500), ms(500), Some(ms(1500)), OnTimeout::Keep);
        assert_eq!((r.completes, r.gives_up), (Some(ms(2000)), Some(ms(1500))));
        // Waited, completes exactly at its deadline: late.
        let r = f.submit(ms(1000), ms(1000), Some(ms(3000)), OnTimeout::Keep);
        assert_eq!((r.completes, r.gives_up), (Some(ms(3000)), Some(ms(3000))));
    }

    #[test]
    fn varying_patience_turns_the_exit_queue_into_a_heap() {
        let mut f = FifoServers::new(1, constant(10_000), rng::stream(1, 1));
        f.submit(ms(0), ms(0), None, OnTimeout::Cancel);
        f.submit(ms(1), ms(1), Some(ms(5000)), OnTimeout::Cancel);
        f.submit(ms(2), ms(2), Some(ms(3000)), OnTimeout::Cancel); // leaves first
        f.submit(ms(3), ms(3), Some(ms(4000)), OnTimeout::Cancel);
        assert_eq!(f.queue_len(), 3);
        assert_eq!(f.queue_len_before(ms(3500)), 2);
        // Queue time: 4999 + 2998 + 3997 ms in all; up to 3.5 s: 3499 + 2998 + 3497.
        assert!((f.queue_seconds(ms(3500)) - 9.994).abs() < 1e-9);
        assert_eq!(f.peak_queue(), 3);
    }
}
