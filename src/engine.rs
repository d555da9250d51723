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
//! # Guards
//! Every run has a horizon and an event budget ([`Limits`]); hitting either ends the run
//! and is reported in [`RunReport::stop`], never a hang.
//!
//! # Fingerprint
//! Every executed event is folded into a trajectory hash over (time, event kind, entity)
//! ([`TraceHash`]). The same scenario and seed give the same hash on every machine.

pub mod queue;
pub mod rng;
pub mod time;
pub mod trace;

pub use queue::EventQueue;
pub use rng::{stream_id, RngStream};
pub use time::SimTime;
pub use trace::TraceHash;

/// What the kernel needs to know of an event to fingerprint the trajectory.
pub trait TraceEvent {
    /// A small stable code for the event's variant.
    fn kind(&self) -> u32;
    /// The entity the event is about (a pod, a request, a node...), stable across runs.
    fn entity(&self) -> u64;
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
}

/// Asks the CPU to bring the cache lines holding `value` closer (its first and last
/// byte: a value of up to 64 bytes spans at most two lines). A hint for
/// [`Model::prefetch`]: it reads nothing and changes nothing; a no-op off x86-64.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = (value as *const T).cast::<i8>();
        let last = p.wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
        // SAFETY: SSE is part of the x86-64 baseline, so the instruction exists; a
        // prefetch never faults and has no effect the program can observe.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
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
    queue: EventQueue<E>,
    stop_requested: bool,
    clamped: u64,
}

impl<E> Context<E> {
    fn new() -> Self {
        Context {
            now: SimTime::ZERO,
            queue: EventQueue::new(),
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
        self.queue.push(self.now.saturating_add(delay), event);
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
        self.queue.push(time, event);
    }

    /// Asks the engine to stop after the current event.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Events waiting to run.
    pub fn pending(&self) -> usize {
        self.queue.len()
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

impl<E, S: Into<E>> Schedule<S> for Context<E> {
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
    trace: TraceHash,
    events: u64,
}

impl<M: Model> Simulation<M> {
    /// A simulation at time zero with nothing scheduled.
    pub fn new(model: M) -> Self {
        Simulation {
            model,
            ctx: Context::new(),
            trace: TraceHash::new(),
            events: 0,
        }
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

    /// Runs until the queue drains, the model stops, or a limit is hit. May be called
    /// again with a later horizon to continue.
    pub fn run(&mut self, limits: Limits) -> RunReport {
        self.ctx.stop_requested = false;
        let stop = loop {
            if self.events >= limits.max_events {
                break StopReason::EventBudget;
            }
            let Some((time, event)) = self.ctx.queue.pop_before(limits.horizon) else {
                if self.ctx.queue.is_empty() {
                    break StopReason::Drained;
                }
                self.ctx.now = self.ctx.now.max(limits.horizon);
                break StopReason::Horizon;
            };
            self.ctx.now = time;
            self.trace.record(time, event.kind(), event.entity());
            self.events += 1;
            if let Some(next) = self.ctx.queue.peek_cheap() {
                self.model.prefetch(next);
            }
            self.model.handle(event, &mut self.ctx);
            if self.ctx.stop_requested {
                break StopReason::Stopped;
            }
        };
        RunReport {
            stop,
            events: self.events,
            end: self.ctx.now,
            trace_hash: self.trace.value(),
            clamped: self.ctx.clamped,
        }
    }
}

#[cfg(test)]
mod tests;
