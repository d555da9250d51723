//! The discrete-event kernel. It knows nothing of Kubernetes, certificates or files.
//!
//! # Time
//! Simulated time is [`SimTime`]: integer nanoseconds since the start of the run. Floats
//! are never used as queue keys, so two runs order events identically on every machine.
//!
//! # Ordering guarantees
//! Events are executed in order of `(time, insertion sequence)`:
//! - an event scheduled for an earlier time always runs first;
//! - events scheduled for the *same* time run first-in first-out, in the order the
//!   `schedule_*` calls were made (the sequence number is global to the run);
//! - an event can never be scheduled in the past: `schedule_at` with a time before `now`
//!   is clamped to `now` (and counted, see [`RunReport::clamped`]) so time never goes back.
//!
//! # Models and contexts
//! A model implements [`Model`]: one event enum and a `handle` function. The model never
//! sees the engine, only a [`Context`] that gives the current time, scheduling and the
//! ability to stop the run. Randomness comes from one stream per role and entity
//! ([`rng`]), owned by the component that draws, all derived from one master seed.
//!
//! # Partitions and windows
//! A model may split its state into *partitions* (a fleet: its clusters) and say of each
//! event which partition it belongs to ([`TraceEvent::partition_key`], mapped through
//! [`Partitions`]) or that it is *global* (a sample of the whole fleet, a wave's start).
//! The contract: a partition's event reads and changes only its partition's state (and
//! state no partition event changes), and schedules only events of its own partition;
//! a global event may read and change anything and schedule any event. Scheduling
//! another partition's event, or a global one, from a partition's event panics: it is a
//! bug in the model, found by its tests.
//!
//! Under that contract two events of different partitions commute, so the kernel can run
//! a partitioned model in one of two orders ([`Order`]) with the same result:
//! - [`Order::Global`]: every event in `(time, insertion sequence)` order, as above;
//! - [`Order::Windowed`]: up to the next global event (the *barrier*), each partition's
//!   events run one partition after another, each partition's in its own
//!   `(time, sequence)` order; then the global event runs, with every partition at
//!   exactly the events that come before it in the global order. A partition's state
//!   stays in the cache while its events run (the reason for this order: at 2 000
//!   clusters interleaved events miss the cache at almost every step).
//!
//! Each partition sees the same events in the same order and the same times under both
//! orders, so every result is the same; the tests run every shipped scenario both ways.
//! The fingerprint is kept per partition (see below) so that it, too, is the same.
//!
//! # Guards
//! Every run has a horizon and an event budget ([`Limits`]); hitting either ends the run
//! and is reported in [`RunReport::stop`], never a hang.
//!
//! # Fingerprint
//! Every executed event is folded into a trajectory hash over (time, event kind, entity)
//! ([`TraceHash`]). The same scenario and seed give the same hash on every machine. A
//! partitioned run folds each partition's events, and the global events, into hashes of
//! their own, combined at the end in partition order: a fingerprint of every partition's
//! trajectory that does not depend on how partitions interleave.

pub mod queue;
pub mod rng;
pub mod time;
pub mod trace;

pub use queue::EventQueue;
pub use rng::{stream_id, RngStream};
pub use time::SimTime;
pub use trace::TraceHash;

/// What the kernel needs to know of an event: what to fingerprint of it, and where it
/// belongs.
pub trait TraceEvent {
    /// A small stable code for the event's variant.
    fn kind(&self) -> u32;
    /// The entity the event is about (a pod, a request, a node...), stable across runs.
    fn entity(&self) -> u64;
    /// The key of the partition the event belongs to, which the run's [`Partitions`]
    /// maps to a partition (a cluster's index, say); `None` for a global event. Ignored
    /// by a run without partitions.
    #[inline]
    fn partition_key(&self) -> Option<u32> {
        None
    }
}

/// The partition of a global event.
pub const GLOBAL: u32 = u32::MAX;

/// How a model's events are split into partitions: an event whose
/// [`TraceEvent::partition_key`] is `k` belongs to partition `of_key[k]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    of_key: Box<[u32]>,
    count: u32,
}

impl Partitions {
    /// Partitions from the partition of each key; they are numbered `0..count`, where
    /// `count` is one more than the largest number used.
    ///
    /// # Panics
    /// If a key maps to [`GLOBAL`].
    pub fn new(of_key: Vec<u32>) -> Partitions {
        assert!(
            of_key.iter().all(|&p| p != GLOBAL),
            "partitions: a key maps to GLOBAL"
        );
        let count = of_key.iter().max().map_or(0, |&m| m + 1);
        Partitions {
            of_key: of_key.into_boxed_slice(),
            count,
        }
    }

    /// Number of partitions.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The partition of an event ([`GLOBAL`] for a global one).
    #[inline]
    pub fn of<E: TraceEvent>(&self, event: &E) -> u32 {
        match event.partition_key() {
            Some(k) => self.of_key[k as usize],
            None => GLOBAL,
        }
    }
}

/// The order a partitioned run executes its events in (see the module docs); every
/// result is the same under both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Every event in `(time, insertion sequence)` order.
    Global,
    /// Each partition's events up to the next global event, one partition after another.
    #[default]
    Windowed,
}

/// A simulation model: its event type and how it reacts to one event.
pub trait Model {
    /// The model's one event enum.
    type Event: TraceEvent;
    /// Reacts to `event` at `ctx.now()`, scheduling follow-up events through `ctx`.
    fn handle(&mut self, event: Self::Event, ctx: &mut Context<Self::Event>);
    /// A hint, given before the current event is handled, that `next` is probably the
    /// event after it: a model may prefetch the memory `next`'s handler will read, so
    /// that its cache misses overlap the current handler's work. It must not change
    /// state (it takes `&self`); the default does nothing.
    #[inline]
    fn prefetch(&self, next: &Self::Event) {
        let _ = next;
    }
    /// A hint, in a windowed run, that `partition`'s events run `ahead` partitions from
    /// now (1: right after the current one's). Each partition gets the hint at
    /// `ahead` = [`PREFETCH_AHEAD`], then at every step down to 1, so a model can chase
    /// pointers one level a step: its top-level state at the first hint, what that
    /// state points to at the next (those lines have arrived by then), and so on. Same
    /// rules as [`Model::prefetch`].
    #[inline]
    fn prefetch_partition(&self, partition: u32, ahead: u32) {
        let _ = (partition, ahead);
    }
}

/// How many partitions ahead of the running one a windowed run starts
/// [`Model::prefetch_partition`]'s hints.
pub const PREFETCH_AHEAD: u32 = 3;

/// The hints for partition `q`, `ahead` partitions from the running one: its queue's
/// and its model state's.
#[inline]
fn hint_partition<M: Model>(
    model: &M,
    parts: &[EventQueue<Sequenced<M::Event>>],
    q: usize,
    ahead: u32,
) {
    parts[q].prefetch_front(ahead);
    model.prefetch_partition(q as u32, ahead);
}

/// Asks the CPU to bring the cache lines holding `value` closer (its first and last
/// byte: a value of up to 64 bytes spans at most two lines). A hint for
/// [`Model::prefetch`]: it reads nothing and changes nothing; a no-op off x86-64.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    let p = (value as *const T).cast::<u8>();
    prefetch_line(p);
    prefetch_line(p.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}

/// [`prefetch`] of every cache line of `value` (a struct of a few hundred bytes or a
/// few kilobytes that a handler reads all over).
#[inline]
pub fn prefetch_all<T>(value: &T) {
    let p = (value as *const T).cast::<u8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(64) {
        prefetch_line(p.wrapping_add(offset));
    }
}

/// The prefetch instruction for the line holding `p` (never dereferenced).
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86-64 baseline, so the instruction exists; a
        // prefetch never faults, even on an invalid address, and has no effect the
        // program can observe.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Limits that end a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// No event at or after this time is executed.
    pub horizon: SimTime,
    /// At most this many events are executed.
    pub max_events: u64,
}

impl Limits {
    /// A horizon with no practical event budget.
    pub fn horizon(horizon: SimTime) -> Self {
        Limits {
            horizon,
            max_events: u64::MAX,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// No event was left to execute.
    Drained,
    /// The next event lay at or beyond the horizon.
    Horizon,
    /// The event budget was used up.
    EventBudget,
    /// The model asked to stop.
    Stopped,
}

impl StopReason {
    /// A stable lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Drained => "drained",
            StopReason::Horizon => "horizon",
            StopReason::EventBudget => "event_budget",
            StopReason::Stopped => "stopped",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Why it ended.
    pub stop: StopReason,
    /// Events executed.
    pub events: u64,
    /// Simulated time at the end: the horizon when it was hit, else the last event's time.
    pub end: SimTime,
    /// Trajectory fingerprint.
    pub trace_hash: u64,
    /// Schedules into the past that were clamped to `now` (a model bug if non-zero; the
    /// fleet model reports it in its summary as `clamped_events`).
    pub clamped: u64,
}

/// The model's view of the engine while it handles an event.
pub struct Context<E> {
    now: SimTime,
    /// Every pending event, without partitions or under [`Order::Global`].
    queue: EventQueue<E>,
    /// The partitions, if the run has them.
    partitions: Option<Box<Partitions>>,
    /// Under [`Order::Windowed`]: the pending events, per partition and global.
    windows: Option<Box<Windows<E>>>,
    /// The partition of the event being handled ([`GLOBAL`] for a global event, or
    /// outside any event).
    current: u32,
    stop_requested: bool,
    clamped: u64,
}

/// An event with its insertion sequence number (windowed runs order a partition's
/// events against the next global event by it).
struct Sequenced<E> {
    seq: u64,
    event: E,
}

/// The pending events of a windowed run.
struct Windows<E> {
    global: EventQueue<Sequenced<E>>,
    parts: Vec<EventQueue<Sequenced<E>>>,
    /// Bit `p` is set when partition `p` may have events (set by a push, cleared when
    /// the partition is found empty): a barrier visits only these, not every partition.
    pending: Vec<u64>,
    /// A lower bound on the time of partition `p`'s earliest event (exact after a
    /// window stopped at it): a barrier skips a partition whose next event comes after
    /// it without touching its queue (a fleet's idle clusters hold only rotations
    /// hours ahead; finding their earliest would scan them at every barrier).
    next: Vec<u64>,
    /// The next insertion sequence number.
    seq: u64,
}

impl<E> Windows<E> {
    /// The first partition at or after `from` that may have an event at or before
    /// `limit`.
    #[inline]
    fn next_due(&self, from: usize, limit: SimTime) -> Option<usize> {
        let mut w = from / 64;
        let mut word = *self.pending.get(w)? & (!0u64 << (from % 64));
        loop {
            while word != 0 {
                let p = w * 64 + word.trailing_zeros() as usize;
                if self.next[p] <= limit.as_nanos() {
                    return Some(p);
                }
                word &= word - 1;
            }
            w += 1;
            word = *self.pending.get(w)?;
        }
    }
}

/// Emptied buckets of a partition's queue keep at most this many slots: a fleet has
/// thousands of queues, and the default (1 024 slots of ~56 B per bucket) would hold
/// gigabytes across them.
const PARTITION_KEEP_CAPACITY: usize = 64;

impl<E: TraceEvent> Context<E> {
    fn new() -> Self {
        Context {
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            partitions: None,
            windows: None,
            current: GLOBAL,
            stop_requested: false,
            clamped: 0,
        }
    }

    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` after `delay` (saturating at [`SimTime::MAX`]).
    #[inline]
    pub fn schedule_in(&mut self, delay: SimTime, event: E) {
        self.push(self.now.saturating_add(delay), event);
    }

    /// Schedules `event` at `time`; a time in the past is clamped to now.
    #[inline]
    pub fn schedule_at(&mut self, time: SimTime, event: E) {
        let time = if time < self.now {
            self.clamped += 1;
            self.now
        } else {
            time
        };
        self.push(time, event);
    }

    /// Files an event at `time` (not before now).
    #[inline(always)]
    fn push(&mut self, time: SimTime, event: E) {
        let Some(partitions) = &self.partitions else {
            self.queue.push(time, event);
            return;
        };
        let part = partitions.of(&event);
        if self.current != GLOBAL && part != self.current {
            panic!(
                "engine: an event of partition {} scheduled an event of {} (the model's partitions \
                 must not share events)",
                self.current,
                if part == GLOBAL {
                    "no partition (a global event)".to_string()
                } else {
                    format!("partition {part}")
                }
            );
        }
        match self.windows.as_deref_mut() {
            None => self.queue.push(time, event),
            Some(w) => {
                let seq = w.seq;
                w.seq += 1;
                let queue = if part == GLOBAL {
                    &mut w.global
                } else {
                    w.pending[part as usize / 64] |= 1 << (part % 64);
                    let next = &mut w.next[part as usize];
                    *next = (*next).min(time.as_nanos());
                    &mut w.parts[part as usize]
                };
                queue.push(time, Sequenced { seq, event });
            }
        }
    }

    /// Asks the engine to stop after the current event.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Events waiting to run.
    pub fn pending(&self) -> usize {
        match self.windows.as_deref() {
            None => self.queue.len(),
            Some(w) => w.global.len() + w.parts.iter().map(EventQueue::len).sum::<usize>(),
        }
    }
}

/// Scheduling as a model *component* sees it: the component has its own event type `S`
/// which the owning model's event type wraps (`impl From<S> for E`). A component written
/// against `Schedule<S>` can be reused by any model that embeds it.
pub trait Schedule<S> {
    /// The current simulated time.
    fn now(&self) -> SimTime;
    /// Schedules `event` after `delay`.
    fn schedule_in(&mut self, delay: SimTime, event: S);
    /// Schedules `event` at `time` (clamped to now if in the past).
    fn schedule_at(&mut self, time: SimTime, event: S);
}

impl<E: TraceEvent, S: Into<E>> Schedule<S> for Context<E> {
    #[inline]
    fn now(&self) -> SimTime {
        self.now
    }
    #[inline]
    fn schedule_in(&mut self, delay: SimTime, event: S) {
        Context::schedule_in(self, delay, event.into());
    }
    #[inline]
    fn schedule_at(&mut self, time: SimTime, event: S) {
        Context::schedule_at(self, time, event.into());
    }
}

/// A model together with its event queue and clock.
pub struct Simulation<M: Model> {
    /// The model; public so a caller can inspect it between runs.
    pub model: M,
    ctx: Context<M::Event>,
    /// The fingerprint: one hash without partitions; with them, one per partition and
    /// the global events' last.
    traces: Vec<TraceHash>,
    events: u64,
    order: Order,
    /// The latest time an event ran at (a windowed run's partitions each have their own
    /// clock).
    latest: SimTime,
}

impl<M: Model> Simulation<M> {
    /// A simulation at time zero with nothing scheduled, without partitions: every event
    /// in `(time, insertion sequence)` order.
    pub fn new(model: M) -> Self {
        Simulation {
            model,
            ctx: Context::new(),
            traces: vec![TraceHash::new()],
            events: 0,
            order: Order::Global,
            latest: SimTime::ZERO,
        }
    }

    /// A simulation whose events fall into `partitions`, run in `order` (see the module
    /// docs; every result is the same under both orders).
    pub fn partitioned(model: M, partitions: Partitions, order: Order) -> Self {
        let count = partitions.count() as usize;
        let mut sim = Simulation::new(model);
        sim.traces = vec![TraceHash::new(); count + 1];
        if order == Order::Windowed {
            sim.ctx.windows = Some(Box::new(Windows {
                global: EventQueue::new(),
                parts: (0..count)
                    .map(|_| EventQueue::with_kept_capacity(PARTITION_KEEP_CAPACITY))
                    .collect(),
                pending: vec![0; count.div_ceil(64)],
                next: vec![u64::MAX; count],
                seq: 0,
            }));
        }
        sim.ctx.partitions = Some(Box::new(partitions));
        sim.order = order;
        sim
    }

    /// The order events run in.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Schedules an initial event at an absolute time.
    pub fn schedule_at(&mut self, time: SimTime, event: M::Event) {
        self.ctx.schedule_at(time, event);
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.ctx.now
    }

    /// Lets the model schedule its initial events through a context, exactly as it
    /// would from a handler.
    pub fn init(&mut self, f: impl FnOnce(&mut M, &mut Context<M::Event>)) {
        f(&mut self.model, &mut self.ctx);
    }

    /// Events executed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The fingerprint of the trajectory so far.
    pub fn trace_hash(&self) -> u64 {
        match self.traces.as_slice() {
            [one] => one.value(),
            parts => TraceHash::combine(parts),
        }
    }

    /// Runs until the queue drains, the model stops, or a limit is hit. May be called
    /// again with a later horizon to continue.
    pub fn run(&mut self, limits: Limits) -> RunReport {
        self.ctx.stop_requested = false;
        let stop = if self.ctx.windows.is_some() {
            self.run_windowed(limits)
        } else {
            self.run_in_order(limits)
        };
        RunReport {
            stop,
            events: self.events,
            end: self.ctx.now,
            trace_hash: self.trace_hash(),
            clamped: self.ctx.clamped,
        }
    }

    /// Folds an event about to run into its partition's fingerprint, and makes its
    /// partition the current one (what it may schedule is checked against it).
    #[inline(always)]
    fn record(&mut self, time: SimTime, event: &M::Event) {
        let i = match self.ctx.partitions.as_deref() {
            None => 0,
            Some(p) => {
                self.ctx.current = p.of(event);
                match self.ctx.current {
                    GLOBAL => self.traces.len() - 1,
                    part => part as usize,
                }
            }
        };
        self.traces[i].record(time, event.kind(), event.entity());
        self.events += 1;
    }

    /// Every event in `(time, insertion sequence)` order.
    fn run_in_order(&mut self, limits: Limits) -> StopReason {
        let stop = self.run_in_order_inner(limits);
        self.ctx.current = GLOBAL;
        stop
    }

    fn run_in_order_inner(&mut self, limits: Limits) -> StopReason {
        loop {
            if self.events >= limits.max_events {
                return StopReason::EventBudget;
            }
            let Some((time, event)) = self.ctx.queue.pop_before(limits.horizon) else {
                if self.ctx.queue.is_empty() {
                    return StopReason::Drained;
                }
                self.ctx.now = self.ctx.now.max(limits.horizon);
                return StopReason::Horizon;
            };
            self.ctx.now = time;
            self.record(time, &event);
            if let Some(next) = self.ctx.queue.peek_cheap() {
                self.model.prefetch(next);
            }
            self.model.handle(event, &mut self.ctx);
            if self.ctx.stop_requested {
                return StopReason::Stopped;
            }
        }
    }

    /// Partition by partition up to each global event, then that event.
    fn run_windowed(&mut self, limits: Limits) -> StopReason {
        let horizon = limits.horizon.as_nanos();
        let stop = 'run: loop {
            // The barrier: the next global event before the horizon, or the horizon.
            let w = self.ctx.windows.as_deref_mut().expect("windowed");
            let barrier = match w.global.peek_before(limits.horizon) {
                Some((t, e)) => (t.as_nanos(), e.seq),
                None => (horizon, 0),
            };
            let limit = SimTime(barrier.0);
            // The partitions due in this window, the running one first and the next
            // PREFETCH_AHEAD after it: which are due cannot change while the window runs
            // (a partition's events schedule only into it).
            let mut due = [None; PREFETCH_AHEAD as usize + 1];
            {
                let w = self.ctx.windows.as_deref().expect("windowed");
                let mut from = 0;
                for (i, slot) in due.iter_mut().enumerate() {
                    *slot = w.next_due(from, limit);
                    let Some(q) = *slot else { break };
                    from = q + 1;
                    if i > 0 {
                        // The hints steps before the first would have given (the
                        // first step gives each its level `i`).
                        for ahead in (i as u32 + 1..=PREFETCH_AHEAD).rev() {
                            hint_partition(&self.model, &w.parts, q, ahead);
                        }
                    }
                }
            }
            while let Some(p) = due[0] {
                let w = self.ctx.windows.as_deref_mut().expect("windowed");
                due.rotate_left(1);
                let last = PREFETCH_AHEAD as usize;
                due[last] = due[last - 1].and_then(|q| w.next_due(q + 1, limit));
                // The coming partitions' state is cold by now (every other partition ran
                // since): ask for it while this one runs, a level deeper a step nearer.
                for (ahead, q) in (1..).zip(&due[..last]) {
                    if let Some(q) = *q {
                        hint_partition(&self.model, &w.parts, q, ahead);
                    }
                }
                loop {
                    if self.events >= limits.max_events {
                        break 'run StopReason::EventBudget;
                    }
                    let w = self.ctx.windows.as_deref_mut().expect("windowed");
                    let q = &mut w.parts[p];
                    let (time, e) = match q.pop_at_or_before_if(limit, |t, e| (t, e.seq) < barrier)
                    {
                        Ok(popped) => popped,
                        Err(head) => {
                            w.next[p] = head.map_or(u64::MAX, SimTime::as_nanos);
                            if head.is_none() {
                                w.pending[p / 64] &= !(1 << (p % 64));
                            }
                            break;
                        }
                    };
                    if let Some(next) = q.peek_cheap() {
                        self.model.prefetch(&next.event);
                    }
                    self.ctx.now = time;
                    self.latest = self.latest.max(time);
                    self.record(time, &e.event);
                    self.model.handle(e.event, &mut self.ctx);
                    if self.ctx.stop_requested {
                        break 'run StopReason::Stopped;
                    }
                }
            }
            if self.events >= limits.max_events {
                break StopReason::EventBudget;
            }
            let w = self.ctx.windows.as_deref_mut().expect("windowed");
            let Some((time, e)) = w.global.pop_before(limits.horizon) else {
                if w.global.is_empty() && w.parts.iter().all(EventQueue::is_empty) {
                    break StopReason::Drained;
                }
                self.latest = self.latest.max(limits.horizon);
                break StopReason::Horizon;
            };
            self.ctx.now = time;
            self.latest = self.latest.max(time);
            self.record(time, &e.event);
            self.model.handle(e.event, &mut self.ctx);
            if self.ctx.stop_requested {
                break StopReason::Stopped;
            }
        };
        self.ctx.current = GLOBAL;
        self.ctx.now = self.latest;
        stop
    }
}

#[cfg(test)]
mod tests;
