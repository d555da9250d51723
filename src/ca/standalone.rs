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
    Context, Limits, Model, RngStream, RunReport, SimTime, Simulation, TraceEvent,
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
}

/// True when nothing changes the CA's speed or workers during the run, so
/// [`FifoServers`] can settle every request at submission.
pub fn settles_at_submission(cfg: &StandaloneConfig) -> bool {
    cfg.ca.usl == Usl::default()
        && cfg.ca.failed_object_slowdown == 0.0
        && cfg.ca.rate_limit.is_none()
        && cfg.dip.is_none()
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
    /// Goodput at the end below half the arrival rate although any dip is over.
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
}

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
    /// When the pending arrival was scheduled.
    arrival_posted: SimTime,
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
            arrival_posted: SimTime::ZERO,
            cfg,
        }
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
    fn submit(&mut self, request: u64, posted: SimTime, ctx: &mut Context<StandaloneEvent>) {
        let now = ctx.now();
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

    #[inline]
    fn handle(&mut self, event: StandaloneEvent, ctx: &mut Context<StandaloneEvent>) {
        match event {
            StandaloneEvent::Arrival => {
                let client = self.next_client;
                self.next_client += 1;
                if ctx.now() >= self.cfg.warmup {
                    self.arrivals += 1;
                }
                let posted = self.arrival_posted;
                self.arrival_posted = ctx.now();
                self.submit(client << 16, posted, ctx);
                let x: f64 = Exp1.sample(&mut self.arrivals_rng);
                ctx.schedule_in(
                    super::from_nanos_f64(x * self.ns_per_arrival),
                    StandaloneEvent::Arrival,
                );
            }
            StandaloneEvent::Attempt { request, posted } => self.submit(request, posted, ctx),
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
            StandaloneEvent::Batch(_) => {
                let now = ctx.now();
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

/// Runs one standalone simulation. The config is assumed valid (the CLI checks it).
pub fn run(cfg: &StandaloneConfig) -> StandaloneReport {
    run_as(cfg, settles_at_submission(cfg))
}

/// [`run`] with the CA settled at submission or event-driven (`settled` requires
/// [`settles_at_submission`]); the two must agree on every figure.
pub(crate) fn run_as(cfg: &StandaloneConfig, settled: bool) -> StandaloneReport {
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
    let run = sim.run(Limits {
        horizon: cfg.horizon,
        max_events: cfg.max_events,
    });
    let end = run.end;
    let m = &mut sim.model;
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
    StandaloneReport {
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
        metastable: dip_over && goodput_per_s_end < 0.5 * cfg.arrival_rate_per_s,
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
    }
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
            let settled = run_as(&cfg, true);
            let events = run_as(&cfg, false);
            assert!(settled.run.events <= events.run.events);
            assert_eq!(figures(settled), figures(events), "case {i}: {cfg:#?}");
        }
    }
}
