//! The certificate authority (CA) as a model component: a signer with `workers` parallel
//! slots that the fleet model (and the standalone `fleetsim ca` model) embed.
//!
//! # Semantics
//! - **Queue.** Requests are served first-in first-out. A request *starts* when a worker
//!   slot is free (fewer than `floor(capacity_fraction * workers)` requests in service)
//!   **and** the token bucket, if any, holds a token. Starting consumes one token.
//! - **Service time** is drawn when the request starts, from the CA's own random stream,
//!   so draws are made in service-start order (common random numbers: two strategies run
//!   with one seed give the k-th started request the same work).
//! - **Processor sharing with Gunther's Universal Scalability Law.** The `n` requests in
//!   service each progress at rate
//!   `r(n) = 1 / ((1 + sigma (n-1) + kappa n (n-1)) * (1 + alpha F))`
//!   where `F` is the number of failed objects ([`CertificateAuthority::set_failed_objects`]);
//!   the slowdown in `F` is linear: each failed object adds `alpha` to the service-time
//!   multiplier. It is implemented with a virtual-work clock: every job in service advances
//!   by the same amount of work, so the CA keeps a min-heap of each job's finishing virtual
//!   work and a *single* pending completion event; whenever the rate changes, the virtual
//!   clock is advanced and that event rescheduled (the old one is invalidated by a
//!   generation counter). With `sigma = kappa = alpha = 0` every job runs at rate 1, so a
//!   request started at `t` with work `S` completes exactly at `t + S`: `c` independent
//!   servers, i.e. the M/M/c queue when service is exponential.
//! - **Deadlines.** [`submit`](CertificateAuthority::submit) takes the client's absolute
//!   deadline and what happens when it passes ([`OnTimeout`]):
//!   - `Cancel`: patience applies to the *queue wait*. A request not started by its
//!     deadline leaves the queue ([`CaOutcome::Reneged`], no work done); once started it is
//!     served. This is what Erlang A and M/M/c+D assume.
//!   - `Keep`: at the deadline the client gives up ([`CaOutcome::TimedOut`]) but the
//!     request stays (queued or in service) and is served anyway, like a Kubernetes CSR
//!     object nobody waits for any more; it then completes as `Served { late: true }` and
//!     the worker time it took (`completion - start`) is counted as wasted.
//!
//!   A deadline exactly at a completion instant: whichever event was scheduled first
//!   runs first (the engine's FIFO rule), so the result is deterministic.
//! - **Capacity changes are not preemptive.** [`set_capacity_fraction`](CertificateAuthority::set_capacity_fraction)
//!   and [`set_workers`](CertificateAuthority::set_workers) only limit how many requests
//!   may *start*; requests already in service finish (a dip drains the excess as they
//!   complete).
//! - **Rate limit.** A token bucket of `burst` tokens refilled at `rate_per_s`, full at
//!   the start. Changing it with [`set_rate_limit`](CertificateAuthority::set_rate_limit)
//!   keeps the tokens already held (capped at the new burst); a new bucket starts full.
//!
//! # Events
//! The CA schedules [`CaEvent`]s through the engine's [`Schedule`] trait, so an owning model
//! wraps them in its own event enum (`impl From<CaEvent> for ModelEvent`) and hands them
//! back to [`handle`](CertificateAuthority::handle) of the CA whose `index` matches
//! [`CaEvent::ca`]. Several CAs can share one model. Stale events (superseded completion or
//! token events, deadlines of requests already done) are recognised and ignored.

pub mod analytic;
pub mod fifo;
pub mod retry;
pub mod standalone;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand_distr::{Distribution, Exp1, StandardNormal};

use crate::engine::{RngStream, Schedule, SimTime, TraceEvent};

/// Reneged or withdrawn queue entries kept before [`CertificateAuthority`] compacts its
/// queue (and only when they outnumber the live entries).
const COMPACT_MIN_GONE: u64 = 4096;

/// The standard normal quantile at 0.99, used to turn a p99 into a lognormal sigma.
pub const Z_99: f64 = 2.326_347_874_040_840_8;

/// How long one request takes to sign when it runs alone on an unloaded CA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServiceTime {
    /// Exponentially distributed with this mean.
    Exponential {
        /// Mean service time.
        mean: SimTime,
    },
    /// Always this long.
    Constant {
        /// The service time.
        value: SimTime,
    },
    /// Lognormal given by its median and 99th percentile:
    /// `mu = ln(median)`, `sigma = ln(p99 / median) / z_0.99`.
    LogNormal {
        /// Median service time.
        median: SimTime,
        /// 99th percentile; must be above the median.
        p99: SimTime,
    },
}

impl ServiceTime {
    /// The mean service time in seconds.
    pub fn mean_s(&self) -> f64 {
        match *self {
            ServiceTime::Exponential { mean } => mean.as_secs_f64(),
            ServiceTime::Constant { value } => value.as_secs_f64(),
            ServiceTime::LogNormal { median, p99 } => {
                let s = lognormal_sigma(median, p99);
                median.as_secs_f64() * (s * s / 2.0).exp()
            }
        }
    }

    /// A lognormal with the given mean and p99, if one exists (`mean < p99 <= mean *
    /// e^(z^2/2)`, about 14.97 x the mean). Of the two lognormals that match, the one
    /// with the smaller sigma is returned.
    pub fn lognormal_from_mean_p99(mean: SimTime, p99: SimTime) -> Result<ServiceTime, String> {
        let (m, q) = (mean.as_secs_f64(), p99.as_secs_f64());
        if m <= 0.0 || q <= m {
            return Err(format!(
                "the p99 ({p99}) must be above the mean ({mean}) for a lognormal"
            ));
        }
        // ln q = mu + z s and ln m = mu + s^2 / 2  =>  s^2/2 - z s + ln(q/m) = 0.
        let disc = Z_99 * Z_99 - 2.0 * (q / m).ln();
        if disc < 0.0 {
            return Err(format!(
                "no lognormal has mean {mean} and p99 {p99}: p99 may be at most {:.2} x the mean",
                (Z_99 * Z_99 / 2.0).exp()
            ));
        }
        let s = Z_99 - disc.sqrt();
        let median = SimTime::from_secs_f64(m * (-s * s / 2.0).exp());
        if median.as_nanos() == 0 || median >= p99 {
            return Err(format!(
                "no usable lognormal has mean {mean} and p99 {p99} (median {median})"
            ));
        }
        Ok(ServiceTime::LogNormal { median, p99 })
    }

    /// Checks the parameters; the message names the field and the value.
    pub fn validate(&self, field: &str) -> Result<(), String> {
        match *self {
            ServiceTime::Exponential { mean } if mean.as_nanos() == 0 => {
                Err(format!("{field}.mean: must be > 0, got {mean}"))
            }
            ServiceTime::Constant { value } if value.as_nanos() == 0 => {
                Err(format!("{field}.value: must be > 0, got {value}"))
            }
            ServiceTime::LogNormal { median, .. } if median.as_nanos() == 0 => {
                Err(format!("{field}.median: must be > 0, got {median}"))
            }
            ServiceTime::LogNormal { median, p99 } if p99 <= median => Err(format!(
                "{field}.p99: must be above the median ({median}), got {p99}"
            )),
            _ => Ok(()),
        }
    }

    /// One draw in nanoseconds.
    #[inline(always)]
    fn sample(&self, rng: &mut RngStream) -> SimTime {
        match *self {
            ServiceTime::Exponential { mean } => {
                let x: f64 = Exp1.sample(rng);
                from_nanos_f64(mean.as_nanos() as f64 * x)
            }
            ServiceTime::Constant { value } => value,
            ServiceTime::LogNormal { median, p99 } => {
                let z: f64 = StandardNormal.sample(rng);
                let s = lognormal_sigma(median, p99);
                from_nanos_f64(median.as_nanos() as f64 * (s * z).exp())
            }
        }
    }
}

/// Nanoseconds as a float to [`SimTime`], rounded half up, saturating; the same as
/// [`SimTime::from_secs_f64`] but without a libm `round` call on the hot path.
#[inline]
pub(crate) fn from_nanos_f64(ns: f64) -> SimTime {
    // Below 2^63 (and NaN-free) the signed conversion is one instruction and truncates
    // the same way as the unsigned one.
    if ns > 0.0 && ns < 9.2e18 {
        SimTime((ns + 0.5) as i64 as u64)
    } else if ns.is_nan() || ns <= 0.0 {
        SimTime::ZERO
    } else if ns >= u64::MAX as f64 {
        SimTime::MAX
    } else {
        SimTime((ns + 0.5) as u64)
    }
}

/// `ceil` for a non-negative float below 2^64, without a libm call.
#[inline]
fn ceil_u64(x: f64) -> u64 {
    let t = x as u64;
    if (t as f64) < x {
        t + 1
    } else {
        t
    }
}

fn lognormal_sigma(median: SimTime, p99: SimTime) -> f64 {
    (p99.as_secs_f64() / median.as_secs_f64()).ln() / Z_99
}

/// A token bucket: `burst` tokens, refilled at `rate_per_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens per second (> 0).
    pub rate_per_s: f64,
    /// Bucket size (>= 1).
    pub burst: u32,
}

/// Gunther's Universal Scalability Law coefficients (both >= 0; zero = linear scaling).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usl {
    /// Contention.
    pub sigma: f64,
    /// Coherency (crosstalk).
    pub kappa: f64,
}

impl Usl {
    /// The slowdown factor of each job when `n` are in service.
    #[inline]
    pub fn slowdown(&self, n: u32) -> f64 {
        let n = n.max(1) as f64;
        1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0)
    }

    /// The concurrency of peak throughput, `sqrt((1 - sigma) / kappa)` (infinite when
    /// `kappa = 0`).
    pub fn peak_concurrency(&self) -> f64 {
        ((1.0 - self.sigma).max(0.0) / self.kappa).sqrt()
    }
}

/// Everything that defines one CA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaConfig {
    /// Parallel signing slots (>= 1).
    pub workers: u32,
    /// Service-time distribution of one request alone.
    pub service: ServiceTime,
    /// Optional token bucket on service starts.
    pub rate_limit: Option<RateLimit>,
    /// Overload behaviour.
    pub usl: Usl,
    /// `alpha`: each failed object multiplies service time by `1 + alpha` more (linear).
    pub failed_object_slowdown: f64,
}

/// 16 workers, exponential 100 ms service, no rate limit, no contention: a CA with room
/// for ordinary churn. Scenarios set their own (see docs/scenario.md).
impl Default for CaConfig {
    fn default() -> Self {
        CaConfig::plain(
            16,
            ServiceTime::Exponential {
                mean: SimTime::from_millis(100),
            },
        )
    }
}

impl CaConfig {
    /// A plain c-server CA: no rate limit, no USL, no failed-object slowdown.
    pub fn plain(workers: u32, service: ServiceTime) -> CaConfig {
        CaConfig {
            workers,
            service,
            rate_limit: None,
            usl: Usl::default(),
            failed_object_slowdown: 0.0,
        }
    }

    /// Checks every field; the message names the field (under `prefix`) and the value.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.workers == 0 {
            return Err(format!("{prefix}.workers: must be >= 1, got 0"));
        }
        self.service.validate(&format!("{prefix}.service"))?;
        if let Some(rl) = self.rate_limit {
            validate_rate_limit(&rl, prefix)?;
        }
        for (name, v) in [
            ("usl.sigma", self.usl.sigma),
            ("usl.kappa", self.usl.kappa),
            ("failed_object_slowdown", self.failed_object_slowdown),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{prefix}.{name}: must be a number >= 0, got {v}"));
            }
        }
        Ok(())
    }
}

fn validate_rate_limit(rl: &RateLimit, prefix: &str) -> Result<(), String> {
    if !(rl.rate_per_s.is_finite() && rl.rate_per_s > 0.0) {
        return Err(format!(
            "{prefix}.rate_limit.rate_per_s: must be a number > 0, got {}",
            rl.rate_per_s
        ));
    }
    if rl.burst == 0 {
        return Err(format!("{prefix}.rate_limit.burst: must be >= 1, got 0"));
    }
    Ok(())
}

/// What a deadline means for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Leave the queue if not started by the deadline (reneging); once started, served.
    Cancel,
    /// The client gives up at the deadline but the CA still does the work (wasted).
    Keep,
}

impl OnTimeout {
    /// `cancel` or `keep`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Cancel => "cancel",
            OnTimeout::Keep => "keep",
        }
    }
}

/// An event of one CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaEvent {
    /// The `index` of the CA it belongs to.
    pub ca: u32,
    /// What happens.
    pub kind: CaEventKind,
}

/// The CA's event kinds. Owners never build these; they only route them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaEventKind {
    /// The job with the least remaining work completes (if `gen` is still current).
    Complete {
        /// Generation of the completion schedule.
        gen: u64,
    },
    /// A request's deadline.
    Deadline {
        /// Slot of the request.
        slot: u32,
        /// Generation of the slot (slots are reused).
        gen: u32,
    },
    /// One request finishes (independent servers: no contention, no slowdown), if the
    /// slot's generation is still `gen`.
    Finish {
        /// Slot of the request.
        slot: u32,
        /// Generation of the slot.
        gen: u32,
    },
    /// The token bucket holds a token again (if `gen` is still current).
    Token {
        /// Generation of the token schedule.
        gen: u64,
    },
}

impl TraceEvent for CaEvent {
    fn kind(&self) -> u32 {
        match self.kind {
            CaEventKind::Complete { .. } => 0x100,
            CaEventKind::Deadline { .. } => 0x101,
            CaEventKind::Token { .. } => 0x102,
            CaEventKind::Finish { .. } => 0x103,
        }
    }
    fn entity(&self) -> u64 {
        let local = match self.kind {
            CaEventKind::Complete { gen } | CaEventKind::Token { gen } => gen,
            CaEventKind::Deadline { slot, gen } | CaEventKind::Finish { slot, gen } => {
                ((gen as u64) << 32) | slot as u64
            }
        };
        ((self.ca as u64) << 48) ^ local
    }
}

/// What the CA reports back to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOutcome {
    /// The request was signed now. `late`: the client had given up (`Keep`); the worker
    /// time it took is wasted.
    Served {
        /// The owner's id.
        request: u64,
        /// When it was submitted.
        submitted: SimTime,
        /// When service started.
        started: SimTime,
        /// Completed after the client's deadline under `Keep`.
        late: bool,
    },
    /// Under `Keep`, the deadline passed now: the client gave up, the request stays.
    TimedOut {
        /// The owner's id.
        request: u64,
        /// When it was submitted.
        submitted: SimTime,
        /// When service started, if it had (the request was then in service).
        started: Option<SimTime>,
    },
    /// Under `Cancel`, the deadline passed before service: the request left the queue.
    Reneged {
        /// The owner's id.
        request: u64,
        /// When it was submitted.
        submitted: SimTime,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Queued,
    InService,
    /// Reneged or withdrawn while queued; still referenced by the queue until popped.
    Gone,
    /// Withdrawn while in service; its job stays in the heap until it surfaces.
    Withdrawn,
}

/// A handle on a submitted request, for [`CertificateAuthority::withdraw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaTicket {
    slot: u32,
    gen: u32,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    request: u64,
    submitted: SimTime,
    started: SimTime,
    state: SlotState,
    on_timeout: OnTimeout,
    timed_out: bool,
    gen: u32,
}

/// A job in service, ordered by finishing virtual work, then by start order.
#[derive(Debug, Clone, Copy)]
struct Job {
    finish: f64,
    seq: u64,
    slot: u32,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    /// Reversed for std's max-heap: the least finishing work (then the earliest start)
    /// is the greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .finish
            .total_cmp(&self.finish)
            .then(other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: SimTime,
}

impl Bucket {
    fn refill(&mut self, now: SimTime) {
        let dt_s = (now - self.at).as_secs_f64();
        self.tokens = (self.tokens + dt_s * self.limit.rate_per_s).min(self.limit.burst as f64);
        self.at = now;
    }
    /// Takes a token if one is there (with a tolerance for float rounding).
    fn take(&mut self, now: SimTime) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
    /// When the next token will be there.
    fn next_token(&self) -> SimTime {
        let missing_s = (1.0 - self.tokens).max(0.0) / self.limit.rate_per_s;
        let ns = (missing_s * 1e9).ceil().max(1.0);
        self.at.saturating_add(SimTime::from_secs_f64(ns / 1e9))
    }
}

/// One certificate authority. See the module docs for its semantics.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    index: u32,
    config: CaConfig,
    rng: RngStream,
    capacity_fraction: f64,
    allowed: u32,
    failed_objects: u64,

    slots: Vec<Slot>,
    free: Vec<u32>,
    queue: VecDeque<u32>,
    queued: u64,
    in_service: u32,

    jobs: BinaryHeap<Job>,
    job_seq: u64,
    /// Virtual work done by every job in service since the clock was last rebased (ns).
    vclock: f64,
    /// Rate at which the virtual clock advances per ns of real time.
    rate: f64,
    /// The pending completion event: its generation, target slot and the rate it assumed.
    completion_gen: u64,
    completion_target: Option<(u32, f64)>,

    bucket: Option<Bucket>,
    token_gen: u64,
    token_due: Option<SimTime>,

    last: SimTime,
    busy_ns: u128,
    queue_ns: u128,
    served: u64,
    served_late: u64,
    timed_out: u64,
    reneged: u64,
    wasted_ns: u128,
    peak_queue: u64,
    withdrawn: u64,
    /// Withdrawn jobs still in `jobs` (dropped lazily when they surface).
    withdrawn_jobs: u32,
    /// Entries of `queue` that reneged or were withdrawn (dropped when they reach the
    /// front, or all at once when they outnumber the live ones: see `compact_queue`).
    gone_in_queue: u64,
    /// No contention and no slowdown (sigma = kappa = alpha = 0): every job runs at rate 1,
    /// so each gets its own completion event and the shared virtual clock is not needed.
    independent: bool,
}

impl CertificateAuthority {
    /// A CA numbered `index` (its events carry it) drawing service times from `rng`.
    /// The config is assumed valid ([`CaConfig::validate`]).
    pub fn new(index: u32, config: CaConfig, rng: RngStream) -> CertificateAuthority {
        let mut ca = CertificateAuthority {
            index,
            config,
            rng,
            capacity_fraction: 1.0,
            allowed: config.workers,
            failed_objects: 0,
            slots: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            queued: 0,
            in_service: 0,
            jobs: BinaryHeap::new(),
            job_seq: 0,
            vclock: 0.0,
            rate: 1.0,
            completion_gen: 0,
            completion_target: None,
            bucket: config.rate_limit.map(|limit| Bucket {
                limit,
                tokens: limit.burst as f64,
                at: SimTime::ZERO,
            }),
            token_gen: 0,
            token_due: None,
            last: SimTime::ZERO,
            busy_ns: 0,
            queue_ns: 0,
            served: 0,
            served_late: 0,
            timed_out: 0,
            reneged: 0,
            wasted_ns: 0,
            peak_queue: 0,
            withdrawn: 0,
            withdrawn_jobs: 0,
            gone_in_queue: 0,
            independent: config.usl.sigma == 0.0
                && config.usl.kappa == 0.0
                && config.failed_object_slowdown == 0.0,
        };
        ca.rate = ca.rate_for(1);
        ca
    }

    /// This CA's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The configuration in force (workers and rate limit reflect later changes).
    pub fn config(&self) -> &CaConfig {
        &self.config
    }

    // ----- requests ---------------------------------------------------------------

    /// Submits `request` (the owner's id) now. `deadline` is absolute; `None` waits
    /// forever. Outcomes arrive later through [`handle`](Self::handle).
    pub fn submit(
        &mut self,
        request: u64,
        deadline: Option<SimTime>,
        on_timeout: OnTimeout,
        sched: &mut impl Schedule<CaEvent>,
    ) -> CaTicket {
        let now = sched.now();
        self.sync(now);
        let slot = self.alloc(Slot {
            request,
            submitted: now,
            started: now,
            state: SlotState::Queued,
            on_timeout,
            timed_out: false,
            gen: 0,
        });
        self.queue.push_back(slot);
        self.queued += 1;
        self.try_start(sched);
        self.peak_queue = self.peak_queue.max(self.queued);
        if let Some(deadline) = deadline {
            let s = self.slots[slot as usize];
            // Under `Cancel` a started request no longer cares about its deadline.
            if s.state == SlotState::Queued || on_timeout == OnTimeout::Keep {
                sched.schedule_at(
                    deadline.max(now),
                    CaEvent {
                        ca: self.index,
                        kind: CaEventKind::Deadline { slot, gen: s.gen },
                    },
                );
            }
        }
        self.refresh_completion(sched);
        CaTicket {
            slot,
            gen: self.slots[slot as usize].gen,
        }
    }

    /// Withdraws a request wherever it is: a queued one leaves the queue, one in service
    /// stops (the worker time it took is wasted) and frees its worker. No outcome is
    /// reported for it. Returns false if it had already completed or left.
    ///
    /// This is a caller cancelling its call (a signer's context deadline), unlike the
    /// deadline semantics of [`submit`](Self::submit), which apply to the queue wait.
    pub fn withdraw(&mut self, ticket: CaTicket, sched: &mut impl Schedule<CaEvent>) -> bool {
        let now = sched.now();
        let Some(s) = self.slots.get(ticket.slot as usize) else {
            return false;
        };
        if s.gen != ticket.gen {
            return false;
        }
        match s.state {
            SlotState::Queued => {
                self.sync(now);
                self.slots[ticket.slot as usize].state = SlotState::Gone;
                self.queued -= 1;
                self.gone_in_queue += 1;
                self.compact_queue();
                true
            }
            SlotState::InService if self.independent => {
                self.sync(now);
                let started = self.slots[ticket.slot as usize].started;
                self.wasted_ns += (now - started).as_nanos() as u128;
                self.in_service -= 1;
                self.withdrawn += 1;
                self.release(ticket.slot); // its Finish event is now stale
                self.try_start(sched);
                true
            }
            SlotState::InService => {
                self.sync(now);
                let s = &mut self.slots[ticket.slot as usize];
                s.state = SlotState::Withdrawn;
                self.wasted_ns += (now - s.started).as_nanos() as u128;
                self.in_service -= 1;
                self.withdrawn += 1;
                self.withdrawn_jobs += 1;
                self.rebase_if_idle();
                self.try_start(sched);
                self.refresh_completion(sched);
                true
            }
            _ => false,
        }
    }

    /// Handles one of this CA's events, pushing what happened to `out`.
    pub fn handle(
        &mut self,
        kind: CaEventKind,
        sched: &mut impl Schedule<CaEvent>,
        out: &mut Vec<CaOutcome>,
    ) {
        let now = sched.now();
        match kind {
            CaEventKind::Complete { gen } => {
                if gen != self.completion_gen || self.completion_target.is_none() {
                    return;
                }
                self.sync(now);
                self.completion_target = None;
                // The scheduled job completes now whatever float rounding says; others
                // whose finishing work is reached complete with it.
                let first = self.jobs.pop().expect("a scheduled completion has a job");
                self.vclock = self.vclock.max(first.finish);
                self.complete(first.slot, now, out);
                while let Some(j) = self.jobs.peek() {
                    if j.finish > self.vclock {
                        break;
                    }
                    let j = self.jobs.pop().expect("peeked");
                    if self.slots[j.slot as usize].state == SlotState::Withdrawn {
                        self.release(j.slot);
                        self.withdrawn_jobs -= 1;
                    } else {
                        self.complete(j.slot, now, out);
                    }
                }
                self.rebase_if_idle();
                self.try_start(sched);
                self.refresh_completion(sched);
            }
            CaEventKind::Deadline { slot, gen } => {
                let s = &mut self.slots[slot as usize];
                if s.gen != gen {
                    return;
                }
                match (s.state, s.on_timeout) {
                    (SlotState::Queued, OnTimeout::Cancel) => {
                        self.sync(now);
                        let s = &mut self.slots[slot as usize];
                        s.state = SlotState::Gone;
                        self.queued -= 1;
                        self.reneged += 1;
                        out.push(CaOutcome::Reneged {
                            request: s.request,
                            submitted: s.submitted,
                        });
                        self.gone_in_queue += 1;
                        self.compact_queue();
                    }
                    (SlotState::Queued | SlotState::InService, OnTimeout::Keep) if !s.timed_out => {
                        s.timed_out = true;
                        self.timed_out += 1;
                        out.push(CaOutcome::TimedOut {
                            request: s.request,
                            submitted: s.submitted,
                            started: (s.state == SlotState::InService).then_some(s.started),
                        });
                    }
                    _ => {}
                }
            }
            CaEventKind::Finish { slot, gen } => {
                let s = &self.slots[slot as usize];
                if s.gen != gen || s.state != SlotState::InService {
                    return;
                }
                self.sync(now);
                self.complete(slot, now, out);
                self.try_start(sched);
            }
            CaEventKind::Token { gen } => {
                if gen != self.token_gen || self.token_due.is_none() {
                    return;
                }
                self.token_due = None;
                self.sync(now);
                self.try_start(sched);
                self.refresh_completion(sched);
            }
        }
    }

    // ----- changes ----------------------------------------------------------------

    /// Lets only `floor(fraction * workers)` workers *start* work (a capacity dip);
    /// `fraction` is clamped to [0, 1]. Requests in service are not preempted.
    pub fn set_capacity_fraction(&mut self, fraction: f64, sched: &mut impl Schedule<CaEvent>) {
        self.sync(sched.now());
        self.capacity_fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.update_allowed();
        self.try_start(sched);
        self.refresh_completion(sched);
    }

    /// Changes the number of workers (e.g. scaling the signer). Not preemptive.
    pub fn set_workers(&mut self, workers: u32, sched: &mut impl Schedule<CaEvent>) {
        self.sync(sched.now());
        self.config.workers = workers;
        self.update_allowed();
        self.try_start(sched);
        self.refresh_completion(sched);
    }

    /// Replaces the rate limit (`None` removes it). Tokens held are kept, capped at the
    /// new burst; a bucket that did not exist starts full.
    pub fn set_rate_limit(&mut self, limit: Option<RateLimit>, sched: &mut impl Schedule<CaEvent>) {
        let now = sched.now();
        self.sync(now);
        self.config.rate_limit = limit;
        self.bucket = limit.map(|limit| {
            let tokens = match self.bucket {
                Some(mut b) => {
                    b.refill(now);
                    b.tokens.min(limit.burst as f64)
                }
                None => limit.burst as f64,
            };
            Bucket {
                limit,
                tokens,
                at: now,
            }
        });
        self.token_gen += 1;
        self.token_due = None;
        self.try_start(sched);
        self.refresh_completion(sched);
    }

    /// Sets the number of failed objects `F`: service slows by `1 + alpha F` (linear).
    pub fn set_failed_objects(&mut self, failed: u64, sched: &mut impl Schedule<CaEvent>) {
        self.sync(sched.now());
        self.failed_objects = failed;
        self.refresh_completion(sched);
    }

    // ----- statistics -------------------------------------------------------------

    /// Requests waiting to start.
    pub fn queue_len(&self) -> u64 {
        self.queued
    }
    /// Requests in service.
    pub fn in_service(&self) -> u32 {
        self.in_service
    }
    /// Workers that may currently start work (`floor(fraction * workers)`).
    pub fn allowed_workers(&self) -> u32 {
        self.allowed
    }
    /// The failed-object count in force.
    pub fn failed_objects(&self) -> u64 {
        self.failed_objects
    }
    /// Integral of the number of requests in service over time, up to `now` (each job
    /// occupies one worker), in worker-seconds.
    pub fn busy_worker_seconds(&self, now: SimTime) -> f64 {
        let ns = self.busy_ns + self.in_service as u128 * (now - self.last).as_nanos() as u128;
        ns as f64 / 1e9
    }
    /// Integral of the queue length over time up to `now`, in request-seconds.
    pub fn queue_seconds(&self, now: SimTime) -> f64 {
        let ns = self.queue_ns + self.queued as u128 * (now - self.last).as_nanos() as u128;
        ns as f64 / 1e9
    }
    /// Requests completed (in time or late).
    pub fn served(&self) -> u64 {
        self.served
    }
    /// Requests completed after their client had given up (`Keep`).
    pub fn served_late(&self) -> u64 {
        self.served_late
    }
    /// Requests whose deadline passed: reneged (`Cancel`) plus timed out (`Keep`).
    pub fn abandoned(&self) -> u64 {
        self.reneged + self.timed_out
    }
    /// Requests that left the queue at their deadline (`Cancel`).
    pub fn reneged(&self) -> u64 {
        self.reneged
    }
    /// Requests whose client gave up while the CA kept them (`Keep`).
    pub fn timed_out(&self) -> u64 {
        self.timed_out
    }
    /// Worker-seconds spent on requests completed after their client gave up.
    pub fn wasted_work_seconds(&self) -> f64 {
        self.wasted_ns as f64 / 1e9
    }
    /// Requests withdrawn by their caller while in service.
    pub fn withdrawn(&self) -> u64 {
        self.withdrawn
    }
    /// Worker slots configured.
    pub fn workers(&self) -> u32 {
        self.config.workers
    }
    /// The largest queue length seen.
    pub fn peak_queue(&self) -> u64 {
        self.peak_queue
    }
    /// Approximate bytes held for requests (slots, free list, queue, jobs in service).
    pub fn memory_bytes(&self) -> u64 {
        (self.slots.capacity() * std::mem::size_of::<Slot>()
            + (self.free.capacity() + self.queue.capacity()) * 4
            + self.jobs.capacity() * std::mem::size_of::<Job>()) as u64
    }

    // ----- internals --------------------------------------------------------------

    fn alloc(&mut self, mut slot: Slot) -> u32 {
        if let Some(i) = self.free.pop() {
            slot.gen = self.slots[i as usize].gen;
            self.slots[i as usize] = slot;
            i
        } else {
            let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 live requests");
            self.slots.push(slot);
            i
        }
    }

    fn release(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.state = SlotState::Free;
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot);
    }

    /// Drops the reneged and withdrawn entries from the queue once they are both many and
    /// more than the live ones, so a queue that does not move (a dip to zero, a
    /// rate limit) holds memory for the requests that wait, not for all that ever came.
    /// Amortised O(1) per entry.
    fn compact_queue(&mut self) {
        if self.gone_in_queue < COMPACT_MIN_GONE || self.gone_in_queue <= self.queued {
            return;
        }
        let mut queue = std::mem::take(&mut self.queue);
        queue.retain(|&slot| {
            if self.slots[slot as usize].state == SlotState::Gone {
                self.release(slot);
                false
            } else {
                true
            }
        });
        self.queue = queue;
        self.gone_in_queue = 0;
    }

    fn update_allowed(&mut self) {
        let a = (self.capacity_fraction * self.config.workers as f64 + 1e-9).floor();
        self.allowed = (a as u32).min(self.config.workers);
    }

    #[inline]
    fn rate_for(&self, n: u32) -> f64 {
        let objects = 1.0 + self.config.failed_object_slowdown * self.failed_objects as f64;
        1.0 / (self.config.usl.slowdown(n) * objects)
    }

    /// Brings integrals and the virtual clock up to `now` under the current state.
    #[inline]
    fn sync(&mut self, now: SimTime) {
        let dt = (now - self.last).as_nanos();
        if dt > 0 {
            self.busy_ns += self.in_service as u128 * dt as u128;
            self.queue_ns += self.queued as u128 * dt as u128;
            if self.in_service > 0 {
                self.vclock += dt as f64 * self.rate;
            }
            self.last = now;
        }
    }

    /// Starts queued requests while a worker and a token are free.
    fn try_start(&mut self, sched: &mut impl Schedule<CaEvent>) {
        let now = sched.now();
        while self.queued > 0 && self.in_service < self.allowed {
            if let Some(b) = self.bucket.as_mut() {
                if !b.take(now) {
                    let due = b.next_token();
                    if self.token_due.is_none_or(|d| d > due) {
                        self.token_gen += 1;
                        self.token_due = Some(due);
                        sched.schedule_at(
                            due,
                            CaEvent {
                                ca: self.index,
                                kind: CaEventKind::Token {
                                    gen: self.token_gen,
                                },
                            },
                        );
                    }
                    return;
                }
            }
            let slot = loop {
                let slot = self.queue.pop_front().expect("queued > 0");
                if self.slots[slot as usize].state == SlotState::Gone {
                    self.gone_in_queue -= 1;
                    self.release(slot);
                } else {
                    break slot;
                }
            };
            self.queued -= 1;
            let work = self.config.service.sample(&mut self.rng);
            let s = &mut self.slots[slot as usize];
            s.state = SlotState::InService;
            s.started = now;
            self.in_service += 1;
            if self.independent {
                let gen = s.gen;
                sched.schedule_at(
                    now.saturating_add(work),
                    CaEvent {
                        ca: self.index,
                        kind: CaEventKind::Finish { slot, gen },
                    },
                );
                continue;
            }
            self.job_seq += 1;
            self.jobs.push(Job {
                finish: self.vclock + work.as_nanos() as f64,
                seq: self.job_seq,
                slot,
            });
        }
        // Drop reneged entries at the head so the queue does not hold them needlessly.
        while let Some(&front) = self.queue.front() {
            if self.slots[front as usize].state != SlotState::Gone {
                break;
            }
            self.queue.pop_front();
            self.gone_in_queue -= 1;
            self.release(front);
        }
    }

    /// With nothing live in service, only withdrawn jobs can be left in the heap: drop
    /// them and rebase the virtual clock (keeps float precision over long runs).
    fn rebase_if_idle(&mut self) {
        if self.in_service > 0 {
            return;
        }
        while let Some(j) = self.jobs.pop() {
            self.release(j.slot);
        }
        self.withdrawn_jobs = 0;
        self.vclock = 0.0;
    }

    fn complete(&mut self, slot: u32, now: SimTime, out: &mut Vec<CaOutcome>) {
        let s = self.slots[slot as usize];
        self.in_service -= 1;
        self.served += 1;
        if s.timed_out {
            self.served_late += 1;
            self.wasted_ns += (now - s.started).as_nanos() as u128;
        }
        out.push(CaOutcome::Served {
            request: s.request,
            submitted: s.submitted,
            started: s.started,
            late: s.timed_out,
        });
        self.release(slot);
    }

    /// Makes sure exactly one live completion event targets the job with the least
    /// remaining work, at the time the current rate gives.
    fn refresh_completion(&mut self, sched: &mut impl Schedule<CaEvent>) {
        if self.independent {
            return; // every job carries its own Finish event
        }
        self.rate = self.rate_for(self.in_service);
        // Withdrawn jobs at the top are dropped: the completion targets a live job. (The
        // counter spares the common case a look at the top job's slot.)
        while self.withdrawn_jobs > 0 {
            let Some(j) = self.jobs.peek() else { break };
            if self.slots[j.slot as usize].state != SlotState::Withdrawn {
                break;
            }
            let j = self.jobs.pop().expect("peeked");
            self.release(j.slot);
            self.withdrawn_jobs -= 1;
        }
        let Some(next) = self.jobs.peek() else {
            if self.completion_target.is_some() {
                self.completion_gen += 1;
                self.completion_target = None;
            }
            return;
        };
        if self.completion_target == Some((next.slot, self.rate)) {
            return; // same job, same rate: the pending event is still right
        }
        let remaining = (next.finish - self.vclock).max(0.0) / self.rate;
        let now = sched.now();
        let at = if remaining >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            now.saturating_add(SimTime(ceil_u64(remaining)))
        };
        self.completion_gen += 1;
        self.completion_target = Some((next.slot, self.rate));
        sched.schedule_at(
            at,
            CaEvent {
                ca: self.index,
                kind: CaEventKind::Complete {
                    gen: self.completion_gen,
                },
            },
        );
    }
}

#[cfg(test)]
mod tests;
