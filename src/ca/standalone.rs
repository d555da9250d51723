//! The CA alone under Poisson arrivals: the model behind `fleetsim ca`.
//!
//! Each arrival is a client that submits one request. If the request's deadline passes
//! (`Cancel`: it reneged; `Keep`: the client timed out while the CA kept it), the client
//! tries again up to `retries` more times, waiting per its [`RetryPolicy`]. Every attempt
//! draws a fresh patience. A request served after its client gave up (`Keep`) is wasted
//! work and no longer counts for the client.
//!
//! # Measurement
//! Figures are taken over the window `[warmup, horizon)`: per-request figures for the
//! requests *submitted* in the window whose fate is known by the horizon (served, or
//! given up by their client), time averages over the window. The window is cut into
//! [`StandaloneConfig::batches`] equal batches (by submission time for per-request
//! figures) and the batch means give a standard error for each estimate.
//! `goodput_per_s_end` counts requests served before their client gave up, by
//! completion time, over the last 10 % of the horizon.
//!
//! # Two ways to run the CA
//! When nothing changes the CA's speed or number of workers during the run (no USL, no
//! rate limit, no capacity dip) its requests are settled at submission by
//! [`FifoServers`]: the only events are arrivals, and for a request that will time out
//! with retries left, one `GaveUp` event at its deadline and the retry's `Attempt`.
//! Otherwise the event-driven [`CertificateAuthority`] runs it (start, completion,
//! deadline and token events). Both give the same figures for the same seed; the event
//! counts and trace hashes differ.
//!
//! # Budgets
//! [`preflight`] refuses a run that could take more events than `max_events` (from the
//! expected arrivals, the most attempts a client can make and the events each costs) or
//! whose queue could outgrow `max_memory_bytes`; while running, the engine stops at the
//! event budget and the model checks the memory it holds every 4096 submissions. A run
//! that hits either ends with a [`Refusal`], not a report.
//!
//! # Random streams (fixed derivation)
//! Under the master seed: `ca/standalone/arrivals` (inter-arrival times),
//! `ca/standalone/patience` (one patience per attempt), `ca/standalone/retry` (backoff
//! jitter) and `ca/0/service` (the CA's service times, drawn in service-start order).

use rand_distr::{Distribution, Exp1};

use super::fifo::{Fate, FifoServers};
use super::retry::RetryPolicy;
use super::{CaConfig, CaEvent, CaOutcome, CertificateAuthority, OnTimeout, Usl};
use crate::engine::rng::named_stream;
use crate::engine::{
    Context, Limits, Model, RngStream, RunReport, SimTime, Simulation, StopReason, TraceEvent,
    TraceHash,
};

/// How long a client waits for one attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Patience {
    /// Always this long.
    Constant(SimTime),
    /// Exponential with this mean.
    Exponential(SimTime),
}

/// A temporary loss of capacity: from `at` for `duration`, only `fraction` of the workers
/// start work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityDip {
    /// Start.
    pub at: SimTime,
    /// Length.
    pub duration: SimTime,
    /// Fraction of workers left, in [0, 1].
    pub fraction: f64,
}

/// Everything that defines one standalone run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StandaloneConfig {
    /// Poisson arrival rate of clients, per second.
    pub arrival_rate_per_s: f64,
    /// The CA.
    pub ca: CaConfig,
    /// Patience per attempt; `None` waits forever.
    pub patience: Option<Patience>,
    /// What a deadline means for the CA.
    pub on_timeout: OnTimeout,
    /// Further attempts after the first one times out.
    pub retries: u32,
    /// Wait between attempts.
    pub backoff: RetryPolicy,
    /// Optional capacity dip.
    pub dip: Option<CapacityDip>,
    /// End of the run.
    pub horizon: SimTime,
    /// Start of the measurement window.
    pub warmup: SimTime,
    /// Master seed.
    pub seed: u64,
    /// Batches for the batch-means standard errors (>= 2).
    pub batches: u32,
    /// Event budget.
    pub max_events: u64,
    /// Memory budget for the requests in flight and the pending events, in bytes.
    pub max_memory_bytes: u64,
}

/// Why a run was refused, up front or while running. The messages name the budget; the
/// caller adds how to raise it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Up front: the run could take more events than the budget.
    #[error(
        "event budget: the run could take ~{events:.2e} events ({clients:.2e} client arrivals, \
         up to {per_client} attempt{} each), more than the budget of {budget}",
        if *per_client == 1 { "" } else { "s" }
    )]
    Events {
        /// Events the run could take.
        events: f64,
        /// Expected client arrivals over the horizon.
        clients: f64,
        /// Most attempts one client can make within the horizon.
        per_client: u64,
        /// The event budget.
        budget: u64,
    },
    /// While running: the event budget ran out before the horizon.
    #[error("event budget: all {budget} events were used by {at} of the {horizon} horizon")]
    EventsUsedUp {
        /// The event budget.
        budget: u64,
        /// Simulated time reached.
        at: SimTime,
        /// The horizon.
        horizon: SimTime,
    },
    /// Up front: the queue could outgrow the memory budget.
    #[error(
        "memory budget: the queue could grow to ~{queue:.2e} requests and hold ~{}, more than \
         the budget of {}",
        format_bytes(*bytes),
        format_bytes(*budget as f64)
    )]
    Memory {
        /// Requests that could wait at once.
        queue: f64,
        /// Bytes they (and the pending events) would hold.
        bytes: f64,
        /// The memory budget.
        budget: u64,
    },
    /// While running: the requests in flight and pending events held more than the budget.
    #[error(
        "memory budget: the run held {} ({queue} requests waiting) by {at}, more than the \
         budget of {}",
        format_bytes(*bytes as f64),
        format_bytes(*budget as f64)
    )]
    MemoryUsedUp {
        /// Bytes held.
        bytes: u64,
        /// Requests waiting then.
        queue: u64,
        /// The memory budget.
        budget: u64,
        /// Simulated time reached.
        at: SimTime,
    },
}

/// Bytes in binary units, e.g. `4 GiB`, `1.5 MiB`.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What [`preflight`] worked out for a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preflight {
    /// Expected client arrivals over the horizon.
    pub clients: f64,
    /// Most attempts one client can make within the horizon.
    pub per_client: u64,
    /// Upper bound on requests (clients x attempts each).
    pub attempts: f64,
    /// Upper bound on events (each request's own events).
    pub events: f64,
    /// Estimated most requests waiting at once.
    pub queue: f64,
    /// Estimated most bytes held for requests and pending events.
    pub bytes: f64,
    /// Whether [`FifoServers`] settles the requests at submission.
    pub settled: bool,
}

/// True when nothing changes the CA's speed or workers during the run, so
/// [`FifoServers`] can settle every request at submission.
pub fn settles_at_submission(cfg: &StandaloneConfig) -> bool {
    cfg.ca.usl == Usl::default()
        && cfg.ca.failed_object_slowdown == 0.0
        && cfg.ca.rate_limit.is_none()
        && cfg.dip.is_none()
}

/// The most requests per second the CA can sign with all its workers: `workers / mean`,
/// less under USL (its peak over `n <= workers`), at most the rate limit.
fn capacity_per_s(ca: &CaConfig, fraction: f64) -> f64 {
    let c = (fraction * ca.workers as f64 + 1e-9).floor().max(0.0);
    let mean_s = ca.service.mean_s();
    let through = |n: f64| n / (mean_s * ca.usl.slowdown(n as u32));
    let mut best = through(c);
    if ca.usl.kappa > 0.0 && c >= 1.0 {
        let peak = ca.usl.peak_concurrency();
        for n in [peak.floor(), peak.ceil()] {
            if n >= 1.0 && n <= c {
                best = best.max(through(n));
            }
        }
    }
    if c < 1.0 {
        best = 0.0;
    }
    match ca.rate_limit {
        Some(rl) => best.min(rl.rate_per_s),
        None => best,
    }
}

/// Checks a run against its budgets before it starts (see the module docs).
///
/// - Events: `arrival rate x horizon` clients, each making at most `1 + min(retries,
///   horizon / shortest failed attempt)` attempts (a failed attempt lasts at least the
///   constant patience plus the shortest backoff). Settled at submission, a first attempt
///   costs one event (its arrival) and a retry two (the give-up and the attempt); with the
///   event-driven CA each attempt costs its submission, its completion, a deadline (with
///   a patience) and a token (with a rate limit). Above `max_events`, refused.
/// - Memory: under `keep` or without patience, a CA offered more requests per second
///   than it can sign queues the excess for the whole horizon (and during a dip, the
///   excess over its reduced capacity); under `cancel` no more than the requests of one
///   mean patience wait, if it is overloaded at all. That queue at the bytes one waiting
///   request holds, plus the workers and pending deadlines and retries, above
///   `max_memory_bytes`, refused.
pub fn preflight(cfg: &StandaloneConfig) -> Result<Preflight, Refusal> {
    let horizon_s = cfg.horizon.as_secs_f64();
    let clients = cfg.arrival_rate_per_s * horizon_s;
    let failed_attempt = match cfg.patience {
        Some(Patience::Constant(d)) => d,
        _ => SimTime::ZERO,
    }
    .saturating_add(cfg.backoff.min_delay());
    let per_client = 1 + match failed_attempt.as_nanos() {
        0 => cfg.retries as u64,
        ns => (cfg.retries as u64).min(cfg.horizon.as_nanos() / ns),
    };
    let attempts = clients * per_client as f64;
    let settled = settles_at_submission(cfg);
    let events = if settled {
        clients * (1.0 + 2.0 * (per_client - 1) as f64)
    } else {
        // Submission, completion, deadline, token.
        let per_attempt =
            2.0 + cfg.patience.is_some() as u8 as f64 + cfg.ca.rate_limit.is_some() as u8 as f64;
        attempts * per_attempt
    };
    if events > cfg.max_events as f64 {
        return Err(Refusal::Events {
            events,
            clients,
            per_client,
            budget: cfg.max_events,
        });
    }
    let offered = attempts / horizon_s.max(1e-9);
    let backlog = |cap: f64, for_s: f64| (offered - cap).max(0.0) * for_s;
    let mut unbounded = backlog(capacity_per_s(&cfg.ca, 1.0), horizon_s);
    if let Some(d) = cfg.dip {
        let len_s = d.duration.as_secs_f64().min(horizon_s);
        unbounded += backlog(capacity_per_s(&cfg.ca, d.fraction), len_s);
    }
    let patience_s = match cfg.patience {
        Some(Patience::Constant(d) | Patience::Exponential(d)) => d.as_secs_f64(),
        None => 0.0,
    };
    let queue = match (cfg.patience, cfg.on_timeout) {
        (Some(_), OnTimeout::Cancel) => unbounded.min(offered * patience_s),
        _ => unbounded,
    };
    let event_bytes = std::mem::size_of::<(u64, StandaloneEvent)>() as f64;
    let (per_waiting, per_worker) = if settled {
        (16.0, 16.0)
    } else {
        (
            2.0 * (std::mem::size_of::<super::Slot>() + 8) as f64 + event_bytes,
            2.0 * (std::mem::size_of::<super::Job>() + std::mem::size_of::<super::Slot>()) as f64,
        )
    };
    let mut pending = 0.0;
    if cfg.retries > 0 {
        let window_s = patience_s + cfg.backoff.max_delay(cfg.retries).as_secs_f64();
        pending += offered * window_s.min(horizon_s);
    }
    if !settled && cfg.on_timeout == OnTimeout::Keep {
        pending += offered * patience_s.min(horizon_s);
    }
    let bytes =
        queue * per_waiting + cfg.ca.workers as f64 * per_worker + 2.0 * pending * event_bytes;
    if bytes > cfg.max_memory_bytes as f64 {
        return Err(Refusal::Memory {
            queue,
            bytes,
            budget: cfg.max_memory_bytes,
        });
    }
    Ok(Preflight {
        clients,
        per_client,
        attempts,
        events,
        queue,
        bytes,
        settled,
    })
}

/// Maximum `retries`: the attempt number lives in the low 16 bits of a request id.
pub const MAX_RETRIES: u32 = 65_534;

/// Standard errors of the main estimates (batch means).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StdErrors {
    /// Of `p_abandon`.
    pub p_abandon: f64,
    /// Of `p_wait`.
    pub p_wait: f64,
    /// Of `mean_wait_s`.
    pub mean_wait_s: f64,
    /// Of `utilization`.
    pub utilization: f64,
    /// Of `mean_queue_len`.
    pub mean_queue_len: f64,
}

/// What a standalone run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StandaloneReport {
    /// Client arrivals in the window.
    pub arrivals: u64,
    /// Requests (first attempts and retries) submitted in the window.
    pub requests: u64,
    /// Retry attempts submitted in the window.
    pub retries: u64,
    /// Requests of the window served before their client gave up.
    pub served: u64,
    /// Requests of the window whose client gave up on them (reneged or timed out).
    pub abandoned: u64,
    /// `abandoned / (served + abandoned)`.
    pub p_abandon: f64,
    /// Fraction of the window's requests (served or abandoned) that did not start at once.
    pub p_wait: f64,
    /// Mean queue wait of the window's requests served in time, seconds.
    pub mean_wait_s: f64,
    /// Time-average queue length over the window.
    pub mean_queue_len: f64,
    /// Busy worker-seconds over the window / (workers x window).
    pub utilization: f64,
    /// Worker-seconds spent in the window on requests whose client had given up.
    pub wasted_work_s: f64,
    /// Requests served after their client gave up (completed in the window).
    pub served_late: u64,
    /// Clients whose last allowed attempt was abandoned (in the window).
    pub clients_failed: u64,
    /// Served-in-time completions per second over the last 10 % of the horizon.
    pub goodput_per_s_end: f64,
    /// Goodput at the end below half the arrival rate although any dip is over, with
    /// requests still waiting at the end (an idle CA is not metastable).
    pub metastable: bool,
    /// Largest queue length over the run.
    pub peak_queue: u64,
    /// Queue length at the end.
    pub queue_end: u64,
    /// Batch-means standard errors.
    pub stderr: StdErrors,
    /// The engine's report (events, stop reason, trace hash).
    pub run: RunReport,
}

/// The standalone model's one event enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandaloneEvent {
    /// A new client arrives.
    Arrival,
    /// A client's retry (request id = client << 16 | attempt index).
    Attempt {
        /// The request id of this attempt.
        request: u64,
        /// When the client gave up on the previous attempt (and scheduled this one).
        posted: SimTime,
    },
    /// A settled request's client gives up now and will retry: draw the wait.
    GaveUp {
        /// The request id of the attempt given up.
        request: u64,
    },
    /// A settled request without patience that reneged at its submission leaves the
    /// queue (and its client retries if it has attempts left).
    LeftAtOnce {
        /// The request id.
        request: u64,
    },
    /// The CA's own events.
    Ca(CaEvent),
    /// The dip starts (`true`) or ends.
    Dip(bool),
    /// A batch boundary: snapshot the time integrals.
    Batch(u32),
}

impl From<CaEvent> for StandaloneEvent {
    #[inline]
    fn from(e: CaEvent) -> Self {
        StandaloneEvent::Ca(e)
    }
}

impl TraceEvent for StandaloneEvent {
    fn kind(&self) -> u32 {
        match self {
            StandaloneEvent::Arrival => 1,
            StandaloneEvent::Attempt { .. } => 2,
            StandaloneEvent::Ca(e) => e.kind(),
            StandaloneEvent::Dip(on) => 3 + *on as u32,
            StandaloneEvent::Batch(_) => 5,
            StandaloneEvent::GaveUp { .. } => 6,
            StandaloneEvent::LeftAtOnce { .. } => 7,
        }
    }
    fn entity(&self) -> u64 {
        match self {
            StandaloneEvent::Arrival | StandaloneEvent::Dip(_) => 0,
            StandaloneEvent::Attempt { request, .. }
            | StandaloneEvent::GaveUp { request }
            | StandaloneEvent::LeftAtOnce { request } => *request,
            StandaloneEvent::Ca(e) => e.entity(),
            StandaloneEvent::Batch(k) => *k as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Batch {
    served: u64,
    abandoned: u64,
    waited: u64,
    wait_ns: u128,
    busy_s: f64,
    queue_s: f64,
}

/// The CA as the model runs it.
// One per run; the settled variant (with its draws made ahead) is the hot path and stays
// inline rather than behind a pointer.
#[allow(clippy::large_enum_variant)]
enum Ca {
    /// Event-driven (boxed: it is the larger one and not the fast path).
    Events(Box<CertificateAuthority>),
    /// Settled at submission.
    Settled(FifoServers),
}

impl Ca {
    fn busy_worker_seconds(&self, now: SimTime) -> f64 {
        match self {
            Ca::Events(ca) => ca.busy_worker_seconds(now),
            Ca::Settled(f) => f.busy_worker_seconds(now),
        }
    }
    fn queue_seconds(&mut self, now: SimTime) -> f64 {
        match self {
            Ca::Events(ca) => ca.queue_seconds(now),
            Ca::Settled(f) => f.queue_seconds(now),
        }
    }
    fn memory_bytes(&self) -> u64 {
        match self {
            Ca::Events(ca) => ca.memory_bytes(),
            Ca::Settled(f) => f.memory_bytes(),
        }
    }
    fn queue_len(&self) -> u64 {
        match self {
            Ca::Events(ca) => ca.queue_len(),
            Ca::Settled(f) => f.queue_len(),
        }
    }
}

/// Inter-arrival times drawn at a time (the arrivals stream serves nothing else, so the
/// sequence is the same; the draws no longer wait on each other one by one).
const GAPS_AHEAD: usize = 32;

/// Submissions between two checks of the memory held.
const MEMORY_CHECK_EVERY: u64 = 4096;

/// The model: one CA, Poisson clients, retries.
pub struct StandaloneModel {
    cfg: StandaloneConfig,
    ca: Ca,
    arrivals_rng: RngStream,
    patience_rng: RngStream,
    retry_rng: RngStream,
    out: Vec<CaOutcome>,
    next_client: u64,
    end_window: SimTime,
    batch_len_ns: u64,
    /// The batch of the last lookup and its span `[from, from + span)`.
    batch_k: usize,
    batch_from_ns: u64,
    batch_span_ns: u64,
    batches: Vec<Batch>,
    snapshots: Vec<(f64, f64)>,
    arrivals: u64,
    requests: u64,
    retries: u64,
    served_late: u64,
    clients_failed: u64,
    wasted_ns: u128,
    goodput_end: u64,
    /// Mean inter-arrival time in nanoseconds.
    ns_per_arrival: f64,
    /// Inter-arrival times drawn ahead, in draw order: `gaps[gap_next..]` are next.
    gaps: [u64; GAPS_AHEAD],
    gap_next: usize,
    submissions: u64,
    /// When the pending arrival was scheduled.
    arrival_posted: SimTime,
    /// Set when the memory held passed the budget (the run was stopped).
    over_memory: Option<(u64, u64, SimTime)>,
    /// Arrivals run inline (see [`StandaloneModel::handle`]): settled, without retries.
    inline: bool,
    /// With `inline`: every event executed, inline or by the engine, and their hash.
    events: u64,
    trace: TraceHash,
    /// With `inline`: the time of the next `Batch` event (`SimTime::MAX` after the last).
    next_batch_at: SimTime,
    /// An event was scheduled while handling the current arrival.
    scheduled: bool,
    /// With `inline`: the event budget ran out at this time (the run was stopped).
    budget_hit: Option<SimTime>,
}

impl StandaloneModel {
    fn new(cfg: StandaloneConfig, settled: bool) -> Self {
        let window = (cfg.horizon - cfg.warmup).as_nanos();
        let batches = cfg.batches.max(2);
        let service_rng = named_stream(cfg.seed, "ca/0/service");
        let ca = if settled {
            Ca::Settled(FifoServers::new(
                cfg.ca.workers,
                cfg.ca.service,
                service_rng,
            ))
        } else {
            Ca::Events(Box::new(CertificateAuthority::new(0, cfg.ca, service_rng)))
        };
        StandaloneModel {
            ca,
            arrivals_rng: named_stream(cfg.seed, "ca/standalone/arrivals"),
            patience_rng: named_stream(cfg.seed, "ca/standalone/patience"),
            retry_rng: named_stream(cfg.seed, "ca/standalone/retry"),
            out: Vec::new(),
            next_client: 0,
            end_window: cfg.horizon - SimTime(cfg.horizon.as_nanos() / 10),
            batch_len_ns: (window / batches as u64).max(1),
            batch_k: 0,
            batch_from_ns: 0,
            batch_span_ns: 0,
            batches: vec![Batch::default(); batches as usize],
            snapshots: Vec::with_capacity(batches as usize + 1),
            arrivals: 0,
            requests: 0,
            retries: 0,
            served_late: 0,
            clients_failed: 0,
            wasted_ns: 0,
            goodput_end: 0,
            ns_per_arrival: 1e9 / cfg.arrival_rate_per_s,
            gaps: [0; GAPS_AHEAD],
            gap_next: GAPS_AHEAD,
            submissions: 0,
            arrival_posted: SimTime::ZERO,
            over_memory: None,
            inline: settled && cfg.retries == 0,
            events: 0,
            trace: TraceHash::new(),
            next_batch_at: cfg.warmup,
            scheduled: false,
            budget_hit: None,
            cfg,
        }
    }

    /// The next inter-arrival time.
    #[inline]
    fn next_gap(&mut self) -> SimTime {
        if self.gap_next == GAPS_AHEAD {
            self.draw_gaps();
        }
        let g = self.gaps[self.gap_next];
        self.gap_next += 1;
        SimTime(g)
    }

    #[inline(never)]
    fn draw_gaps(&mut self) {
        for g in self.gaps.iter_mut() {
            let x: f64 = Exp1.sample(&mut self.arrivals_rng);
            *g = super::from_nanos_f64(x * self.ns_per_arrival).as_nanos();
        }
        self.gap_next = 0;
    }

    /// The batch of a submission time, if it lies in the window.
    #[inline]
    fn batch_of(&mut self, t: SimTime) -> Option<usize> {
        let ns = t.as_nanos();
        if ns.wrapping_sub(self.batch_from_ns) < self.batch_span_ns {
            return Some(self.batch_k); // the batch of the last lookup
        }
        if t < self.cfg.warmup || t >= self.cfg.horizon {
            return None;
        }
        let k = ((t - self.cfg.warmup).as_nanos() / self.batch_len_ns) as usize;
        let k = k.min(self.batches.len() - 1);
        self.batch_k = k;
        self.batch_from_ns = self.cfg.warmup.as_nanos() + k as u64 * self.batch_len_ns;
        self.batch_span_ns = if k + 1 == self.batches.len() {
            self.cfg.horizon.as_nanos() - self.batch_from_ns
        } else {
            self.batch_len_ns
        };
        Some(k)
    }

    #[inline]
    /// Submits `request` now; `posted` is when the event that submits it was scheduled.
    fn submit(
        &mut self,
        request: u64,
        posted: SimTime,
        now: SimTime,
        ctx: &mut Context<StandaloneEvent>,
    ) {
        if now >= self.cfg.warmup {
            self.requests += 1;
            if request & 0xffff != 0 {
                self.retries += 1;
            }
        }
        let deadline = self.cfg.patience.map(|p| {
            let wait = match p {
                Patience::Constant(d) => d,
                Patience::Exponential(mean) => {
                    let x: f64 = Exp1.sample(&mut self.patience_rng);
                    super::from_nanos_f64(mean.as_nanos() as f64 * x)
                }
            };
            now.saturating_add(wait)
        });
        match &mut self.ca {
            Ca::Events(ca) => {
                ca.submit(request, deadline, self.cfg.on_timeout, ctx);
            }
            Ca::Settled(f) => {
                let fate = f.submit(now, posted, deadline, self.cfg.on_timeout);
                self.settle(request, now, fate, ctx);
            }
        }
        self.submissions += 1;
        if self.submissions % MEMORY_CHECK_EVERY == 0 {
            self.check_memory(now, ctx);
        }
    }

    /// Stops the run if the requests in flight and the pending events hold more than
    /// the memory budget.
    #[cold]
    fn check_memory(&mut self, now: SimTime, ctx: &mut Context<StandaloneEvent>) {
        let events = ctx.pending() as u64 * std::mem::size_of::<(u64, StandaloneEvent)>() as u64;
        let bytes = self.ca.memory_bytes() + events;
        if bytes > self.cfg.max_memory_bytes {
            self.over_memory = Some((bytes, self.ca.queue_len(), now));
            ctx.stop();
        }
    }

    /// Accounts for a request settled at submission: its outcomes lie at known times, and
    /// count when they fall before the horizon (as an event there would have run).
    #[inline]
    fn settle(
        &mut self,
        request: u64,
        submitted: SimTime,
        fate: Fate,
        ctx: &mut Context<StandaloneEvent>,
    ) {
        let horizon = self.cfg.horizon;
        if let (Some(done), Some(started)) = (fate.completes, fate.started) {
            if done < horizon {
                if fate.gives_up.is_some() {
                    if done >= self.cfg.warmup {
                        self.served_late += 1;
                        self.wasted_ns += (done - started).as_nanos() as u128;
                    }
                } else {
                    self.served_in_time(submitted, started, done);
                }
            }
        }
        if let Some(at) = fate.gives_up {
            if fate.left_at_once {
                // Where the event-driven CA's deadline would run (see `Fate`); its
                // handler also retries.
                ctx.schedule_at(at, StandaloneEvent::LeftAtOnce { request });
                self.scheduled = true;
            }
            if at < horizon {
                let waited = fate.started != Some(submitted);
                let left_at_once = fate.left_at_once;
                self.abandoned(request, submitted, waited, at, |at| {
                    if !left_at_once {
                        ctx.schedule_at(at, StandaloneEvent::GaveUp { request });
                    }
                });
            }
        }
    }

    /// A request served before its client gave up, completing at `done`.
    #[inline]
    fn served_in_time(&mut self, submitted: SimTime, started: SimTime, done: SimTime) {
        if done >= self.end_window {
            self.goodput_end += 1;
        }
        if let Some(k) = self.batch_of(submitted) {
            let b = &mut self.batches[k];
            b.served += 1;
            let wait = (started - submitted).as_nanos();
            if wait > 0 {
                b.waited += 1;
                b.wait_ns += wait as u128;
            }
        }
    }

    /// A request whose client gave up at `at`: counts it, and calls `retry(at)` if the
    /// client has attempts left, else counts a failed client.
    #[inline]
    fn abandoned(
        &mut self,
        request: u64,
        submitted: SimTime,
        waited: bool,
        at: SimTime,
        retry: impl FnOnce(SimTime),
    ) {
        if let Some(k) = self.batch_of(submitted) {
            let b = &mut self.batches[k];
            b.abandoned += 1;
            b.waited += waited as u64;
        }
        let attempt = (request & 0xffff) as u32; // 0-based
        if attempt < self.cfg.retries {
            retry(at);
        } else if at >= self.cfg.warmup {
            self.clients_failed += 1;
        }
    }

    /// The wait before the retry of `request`, drawn now that its client gave up.
    fn schedule_retry(&mut self, request: u64, ctx: &mut Context<StandaloneEvent>) {
        let attempt = (request & 0xffff) as u32;
        let delay = self.cfg.backoff.delay(attempt + 1, &mut self.retry_rng);
        ctx.schedule_in(
            delay,
            StandaloneEvent::Attempt {
                request: request + 1,
                posted: ctx.now(),
            },
        );
    }

    fn outcomes(&mut self, ctx: &mut Context<StandaloneEvent>) {
        let now = ctx.now();
        let mut out = std::mem::take(&mut self.out);
        for o in out.drain(..) {
            match o {
                CaOutcome::Served {
                    submitted,
                    started,
                    late,
                    ..
                } => {
                    if late {
                        if now >= self.cfg.warmup {
                            self.served_late += 1;
                            self.wasted_ns += (now - started).as_nanos() as u128;
                        }
                        continue;
                    }
                    self.served_in_time(submitted, started, now);
                }
                CaOutcome::TimedOut {
                    request,
                    submitted,
                    started,
                } => {
                    self.gave_up(request, submitted, started != Some(submitted), ctx);
                }
                CaOutcome::Reneged { request, submitted } => {
                    self.gave_up(request, submitted, true, ctx);
                }
            }
        }
        self.out = out;
    }

    fn gave_up(
        &mut self,
        request: u64,
        submitted: SimTime,
        waited: bool,
        ctx: &mut Context<StandaloneEvent>,
    ) {
        let mut retry = false;
        self.abandoned(request, submitted, waited, ctx.now(), |_| retry = true);
        if retry {
            self.schedule_retry(request, ctx);
        }
    }
}

impl Model for StandaloneModel {
    type Event = StandaloneEvent;

    /// Arrivals inline: settled and without retries, the only events a run schedules
    /// besides arrivals are the batch boundaries (known in advance) and `LeftAtOnce` (at
    /// the instant of the arrival that schedules it). So while the next arrival lies
    /// before the next batch boundary and the horizon, and the arrival just handled
    /// scheduled nothing, the engine would pop that arrival next: it is handled here at
    /// once, without a trip through the event queue, and recorded in the model's own
    /// trace hash and event count, which then stand for the engine's (same sequence,
    /// same hash, same count).
    #[inline]
    fn handle(&mut self, event: StandaloneEvent, ctx: &mut Context<StandaloneEvent>) {
        if self.inline {
            if self.events >= self.cfg.max_events {
                self.budget_hit = Some(ctx.now());
                ctx.stop();
                return;
            }
            self.events += 1;
            self.trace.record(ctx.now(), event.kind(), event.entity());
        }
        match event {
            StandaloneEvent::Arrival => {
                let mut now = ctx.now();
                loop {
                    self.scheduled = false;
                    let client = self.next_client;
                    self.next_client += 1;
                    if now >= self.cfg.warmup {
                        self.arrivals += 1;
                    }
                    let posted = self.arrival_posted;
                    self.arrival_posted = now;
                    self.submit(client << 16, posted, now, ctx);
                    let next = now.saturating_add(self.next_gap());
                    if !(self.inline
                        && !self.scheduled
                        && self.over_memory.is_none()
                        && next < self.next_batch_at
                        && next < self.cfg.horizon)
                    {
                        ctx.schedule_at(next, StandaloneEvent::Arrival);
                        break;
                    }
                    if self.events >= self.cfg.max_events {
                        self.budget_hit = Some(now);
                        ctx.stop();
                        break;
                    }
                    self.events += 1;
                    self.trace.record(next, 1, 0);
                    now = next;
                }
            }
            StandaloneEvent::Attempt { request, posted } => {
                self.submit(request, posted, ctx.now(), ctx)
            }
            StandaloneEvent::GaveUp { request } => self.schedule_retry(request, ctx),
            StandaloneEvent::LeftAtOnce { request } => {
                if let Ca::Settled(f) = &mut self.ca {
                    f.left_at_once();
                }
                if ((request & 0xffff) as u32) < self.cfg.retries {
                    self.schedule_retry(request, ctx);
                }
            }
            StandaloneEvent::Ca(e) => {
                let Ca::Events(ca) = &mut self.ca else {
                    unreachable!("a settled CA schedules no events")
                };
                ca.handle(e.kind, ctx, &mut self.out);
                if !self.out.is_empty() {
                    self.outcomes(ctx);
                }
            }
            StandaloneEvent::Dip(on) => {
                let f = match (on, self.cfg.dip) {
                    (true, Some(d)) => d.fraction,
                    _ => 1.0,
                };
                let Ca::Events(ca) = &mut self.ca else {
                    unreachable!("a run with a dip is event-driven")
                };
                ca.set_capacity_fraction(f, ctx);
            }
            StandaloneEvent::Batch(k) => {
                let now = ctx.now();
                let next = k as u64 + 1;
                self.next_batch_at = if next < self.batches.len() as u64 {
                    SimTime(self.cfg.warmup.as_nanos() + next * self.batch_len_ns)
                } else {
                    SimTime::MAX
                };
                self.snapshots
                    .push((self.ca.busy_worker_seconds(now), self.ca.queue_seconds(now)));
            }
        }
    }
}

fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// Runs one standalone simulation: [`preflight`] first, then the run, which ends with a
/// [`Refusal`] if it hits a budget. The config is assumed valid (the CLI checks it).
pub fn run(cfg: &StandaloneConfig) -> Result<StandaloneReport, Refusal> {
    let preflight = preflight(cfg)?;
    run_as(cfg, preflight.settled)
}

/// [`run`] with the CA settled at submission or event-driven (`settled` requires
/// [`settles_at_submission`]); the two must agree on every figure.
pub(crate) fn run_as(cfg: &StandaloneConfig, settled: bool) -> Result<StandaloneReport, Refusal> {
    assert!(!settled || settles_at_submission(cfg));
    let mut sim = Simulation::new(StandaloneModel::new(*cfg, settled));
    sim.schedule_at(SimTime::ZERO, StandaloneEvent::Arrival);
    if let Some(d) = cfg.dip {
        sim.schedule_at(d.at, StandaloneEvent::Dip(true));
        sim.schedule_at(d.at.saturating_add(d.duration), StandaloneEvent::Dip(false));
    }
    let nb = sim.model.batches.len() as u64;
    let len = sim.model.batch_len_ns;
    for k in 0..nb {
        sim.schedule_at(
            SimTime(cfg.warmup.as_nanos() + k * len),
            StandaloneEvent::Batch(k as u32),
        );
    }
    let mut run = sim.run(Limits {
        horizon: cfg.horizon,
        max_events: cfg.max_events,
    });
    let m = &mut sim.model;
    if m.inline {
        // The model saw every event, the engine only those it popped.
        run.events = m.events;
        run.trace_hash = m.trace.value();
        if let Some(at) = m.budget_hit {
            run.stop = StopReason::EventBudget;
            run.end = at;
        }
    }
    let end = run.end;
    if let Some((bytes, queue, at)) = m.over_memory {
        return Err(Refusal::MemoryUsedUp {
            bytes,
            queue,
            budget: cfg.max_memory_bytes,
            at,
        });
    }
    if run.stop == StopReason::EventBudget {
        return Err(Refusal::EventsUsedUp {
            budget: cfg.max_events,
            at: end,
            horizon: cfg.horizon,
        });
    }
    // The last boundary is the end of the run (the horizon, or earlier if a guard hit).
    m.snapshots
        .push((m.ca.busy_worker_seconds(end), m.ca.queue_seconds(end)));
    let workers = cfg.ca.workers as f64;
    for k in 0..m.batches.len() {
        if k + 1 < m.snapshots.len() {
            m.batches[k].busy_s = m.snapshots[k + 1].0 - m.snapshots[k].0;
            m.batches[k].queue_s = m.snapshots[k + 1].1 - m.snapshots[k].1;
        }
    }
    let batch_s = len as f64 / 1e9;
    let b = &m.batches;
    let per = |f: &dyn Fn(&Batch) -> f64| -> Vec<f64> { b.iter().map(f).collect() };
    let (_, se_ab) = mean_and_stderr(&per(&|x| {
        ratio(x.abandoned as f64, (x.served + x.abandoned) as f64)
    }));
    let (_, se_pw) = mean_and_stderr(&per(&|x| {
        ratio(x.waited as f64, (x.served + x.abandoned) as f64)
    }));
    let (_, se_w) = mean_and_stderr(&per(&|x| ratio(x.wait_ns as f64 / 1e9, x.served as f64)));
    let (_, se_u) = mean_and_stderr(&per(&|x| x.busy_s / (workers * batch_s)));
    let (_, se_q) = mean_and_stderr(&per(&|x| x.queue_s / batch_s));

    let served: u64 = b.iter().map(|x| x.served).sum();
    let abandoned: u64 = b.iter().map(|x| x.abandoned).sum();
    let waited: u64 = b.iter().map(|x| x.waited).sum();
    let wait_ns: u128 = b.iter().map(|x| x.wait_ns).sum();
    let window_s = (end - cfg.warmup).as_secs_f64();
    let (busy0, queue0) = m.snapshots[0];
    let (busy1, queue1) = *m.snapshots.last().expect("one snapshot at least");
    let end_window_s = (cfg.horizon - m.end_window).as_secs_f64();
    let goodput_per_s_end = ratio(m.goodput_end as f64, end_window_s);
    let dip_over = cfg
        .dip
        .is_none_or(|d| d.at.saturating_add(d.duration) <= m.end_window);
    let queue_end = match &mut m.ca {
        Ca::Events(ca) => ca.queue_len(),
        Ca::Settled(f) => f.queue_len_before(end),
    };
    let peak_queue = match &m.ca {
        Ca::Events(ca) => ca.peak_queue(),
        Ca::Settled(f) => f.peak_queue(),
    };
    Ok(StandaloneReport {
        arrivals: m.arrivals,
        requests: m.requests,
        retries: m.retries,
        served,
        abandoned,
        p_abandon: ratio(abandoned as f64, (served + abandoned) as f64),
        p_wait: ratio(waited as f64, (served + abandoned) as f64),
        mean_wait_s: ratio(wait_ns as f64 / 1e9, served as f64),
        mean_queue_len: ratio(queue1 - queue0, window_s),
        utilization: ratio(busy1 - busy0, workers * window_s),
        wasted_work_s: m.wasted_ns as f64 / 1e9,
        served_late: m.served_late,
        clients_failed: m.clients_failed,
        goodput_per_s_end,
        // Low goodput alone is no collapse: an idle CA (a few arrivals an hour) serves
        // none in the last tenth by chance. Metastable means requests still wait at the
        // end while the clients get less than half of what they ask for.
        metastable: dip_over && queue_end > 0 && goodput_per_s_end < 0.5 * cfg.arrival_rate_per_s,
        peak_queue,
        queue_end,
        stderr: StdErrors {
            p_abandon: se_ab,
            p_wait: se_pw,
            mean_wait_s: se_w,
            utilization: se_u,
            mean_queue_len: se_q,
        },
        run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::ServiceTime;
    use crate::engine::rng::{self, unit_f64};

    fn base(rate: f64, workers: u32, service: ServiceTime, horizon: SimTime) -> StandaloneConfig {
        StandaloneConfig {
            arrival_rate_per_s: rate,
            ca: CaConfig::plain(workers, service),
            patience: None,
            on_timeout: OnTimeout::Cancel,
            retries: 0,
            backoff: RetryPolicy::Immediate,
            dip: None,
            horizon,
            warmup: SimTime(horizon.as_nanos() / 10),
            seed: 1,
            batches: 20,
            max_events: u64::MAX,
            max_memory_bytes: u64::MAX,
        }
    }

    /// The figures without the event count and trace hash, which differ between modes.
    fn figures(mut r: StandaloneReport) -> StandaloneReport {
        r.run.events = 0;
        r.run.trace_hash = 0;
        r
    }

    /// A random run: load 0.2 to 1.6, constant/exponential/lognormal service, any
    /// patience and timeout mode, retries, and now and then a patience that is a
    /// multiple of a constant service time or zero, or a rate so high that arrivals
    /// share nanoseconds (instants that coincide).
    fn random_config(r: &mut RngStream) -> StandaloneConfig {
        let mut pick = |n: u32| (unit_f64(r) * n as f64) as u32;
        let workers = [1, 2, 4, 16, 64][pick(5) as usize];
        let mean_ms = [1, 100, 1000][pick(3) as usize];
        let mean = SimTime::from_millis(mean_ms);
        let service = match pick(3) {
            0 => ServiceTime::Exponential { mean },
            1 => ServiceTime::Constant { value: mean },
            _ => ServiceTime::LogNormal {
                median: mean,
                p99: SimTime(mean.as_nanos() * 4),
            },
        };
        let load = 0.2 + 1.4 * (pick(1000) as f64 / 1000.0);
        let mut rate = load * workers as f64 * 1000.0 / mean_ms as f64;
        if pick(8) == 0 {
            rate *= 1e4; // arrivals at equal nanoseconds
        }
        let horizon = SimTime::from_secs_f64(6000.0 / rate);
        let mut cfg = base(rate, workers, service, horizon);
        cfg.seed = pick(1 << 20) as u64;
        let patience = match pick(6) {
            0 => SimTime::ZERO,
            1 => mean,
            2 => SimTime(mean.as_nanos() * 2),
            _ => SimTime::from_secs_f64(
                mean.as_secs_f64() * (0.05 + 2.0 * pick(1000) as f64 / 1000.0),
            ),
        };
        cfg.patience = match pick(3) {
            0 => None,
            1 => Some(Patience::Constant(patience)),
            _ => Some(Patience::Exponential(patience.max(SimTime(1)))),
        };
        cfg.on_timeout = if pick(2) == 0 {
            OnTimeout::Cancel
        } else {
            OnTimeout::Keep
        };
        if cfg.patience.is_some() {
            cfg.retries = pick(4);
            cfg.backoff = if pick(2) == 0 {
                RetryPolicy::Immediate
            } else {
                RetryPolicy::agent()
            };
        }
        if pick(4) == 0 {
            cfg.warmup = SimTime::ZERO;
        }
        cfg
    }

    #[test]
    fn settled_and_event_driven_give_the_same_figures() {
        // FLEETSIM_SETTLED_CASES=N SEED=S for a longer search.
        let env = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let mut r = rng::stream(env("SEED", 2024), 7);
        for i in 0..env("FLEETSIM_SETTLED_CASES", 400) {
            let cfg = random_config(&mut r);
            assert!(settles_at_submission(&cfg));
            let settled = run_as(&cfg, true).expect("no budget");
            let events = run_as(&cfg, false).expect("no budget");
            assert!(settled.run.events <= events.run.events);
            assert_eq!(figures(settled), figures(events), "case {i}: {cfg:#?}");
        }
    }

    #[test]
    fn preflight_bounds_requests_by_the_horizon_and_the_patience() {
        let service = ServiceTime::Exponential {
            mean: SimTime::from_millis(100),
        };
        let mut cfg = base(10.0, 2, service, SimTime::from_secs(100));
        cfg.patience = Some(Patience::Constant(SimTime::from_secs(1)));
        cfg.retries = 65_534;
        cfg.max_events = 1_000_000;
        cfg.max_memory_bytes = 1 << 30;
        // A failed attempt lasts at least the 1 s patience: at most 100 per client.
        let p = preflight(&cfg).unwrap();
        assert_eq!((p.clients, p.per_client), (1000.0, 101));
        // Exponential patience has no floor: every retry may happen.
        cfg.patience = Some(Patience::Exponential(SimTime::from_secs(1)));
        assert!(matches!(
            preflight(&cfg),
            Err(Refusal::Events {
                per_client: 65_535,
                ..
            })
        ));
        // Keep without enough capacity: the queue grows for the whole horizon.
        let mut cfg = base(1e6, 16, service, SimTime::from_secs(10));
        cfg.max_events = u64::MAX;
        cfg.max_memory_bytes = 100 << 20;
        let Err(Refusal::Memory { queue, .. }) = preflight(&cfg) else {
            panic!("{:?}", preflight(&cfg))
        };
        assert!((queue - (1e6 - 160.0) * 10.0).abs() < 1.0, "{queue}");
        // Under cancel the queue holds at most one patience's worth of requests.
        cfg.patience = Some(Patience::Constant(SimTime::from_millis(10)));
        let p = preflight(&cfg).unwrap();
        assert!((p.queue - 1e4).abs() < 1.0, "{}", p.queue);
    }

    #[test]
    fn a_run_over_its_memory_budget_stops_with_a_refusal() {
        // 1000/s offered to a CA that signs 10/s; the preflight would refuse it, the
        // running check must too.
        let service = ServiceTime::Exponential {
            mean: SimTime::from_millis(100),
        };
        let mut cfg = base(1000.0, 1, service, SimTime::from_secs(10_000));
        cfg.max_memory_bytes = 1 << 20;
        for settled in [true, false] {
            match run_as(&cfg, settled) {
                Err(Refusal::MemoryUsedUp { bytes, queue, .. }) => {
                    assert!(bytes > 1 << 20 && queue > 10_000, "{bytes} {queue}")
                }
                other => panic!("settled {settled}: {other:?}"),
            }
        }
        cfg.max_memory_bytes = u64::MAX;
        cfg.max_events = 5000;
        assert!(matches!(
            run_as(&cfg, true),
            Err(Refusal::EventsUsedUp { budget: 5000, .. })
        ));
    }
}
