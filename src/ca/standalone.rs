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
//! # Random streams (fixed derivation)
//! Under the master seed: `ca/standalone/arrivals` (inter-arrival times),
//! `ca/standalone/patience` (one patience per attempt), `ca/standalone/retry` (backoff
//! jitter) and `ca/0/service` (the CA's service times, drawn in service-start order).

use rand_distr::{Distribution, Exp1};

use super::retry::RetryPolicy;
use super::{CaConfig, CaEvent, CaOutcome, CertificateAuthority, OnTimeout};
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
        }
    }
    fn entity(&self) -> u64 {
        match self {
            StandaloneEvent::Arrival | StandaloneEvent::Dip(_) => 0,
            StandaloneEvent::Attempt { request } => *request,
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

/// The model: one CA, Poisson clients, retries.
pub struct StandaloneModel {
    cfg: StandaloneConfig,
    ca: CertificateAuthority,
    arrivals_rng: RngStream,
    patience_rng: RngStream,
    retry_rng: RngStream,
    out: Vec<CaOutcome>,
    next_client: u64,
    end_window: SimTime,
    batch_len_ns: u64,
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
}

impl StandaloneModel {
    fn new(cfg: StandaloneConfig) -> Self {
        let window = (cfg.horizon - cfg.warmup).as_nanos();
        let batches = cfg.batches.max(2);
        StandaloneModel {
            ca: CertificateAuthority::new(0, cfg.ca, named_stream(cfg.seed, "ca/0/service")),
            arrivals_rng: named_stream(cfg.seed, "ca/standalone/arrivals"),
            patience_rng: named_stream(cfg.seed, "ca/standalone/patience"),
            retry_rng: named_stream(cfg.seed, "ca/standalone/retry"),
            out: Vec::new(),
            next_client: 0,
            end_window: cfg.horizon - SimTime(cfg.horizon.as_nanos() / 10),
            batch_len_ns: (window / batches as u64).max(1),
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
            cfg,
        }
    }

    /// The batch of a submission time, if it lies in the window.
    #[inline]
    fn batch_of(&self, t: SimTime) -> Option<usize> {
        if t < self.cfg.warmup || t >= self.cfg.horizon {
            return None;
        }
        let k = ((t - self.cfg.warmup).as_nanos() / self.batch_len_ns) as usize;
        Some(k.min(self.batches.len() - 1))
    }

    #[inline]
    fn submit(&mut self, request: u64, ctx: &mut Context<StandaloneEvent>) {
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
        self.ca.submit(request, deadline, self.cfg.on_timeout, ctx);
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
                    if now >= self.end_window {
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
        if let Some(k) = self.batch_of(submitted) {
            let b = &mut self.batches[k];
            b.abandoned += 1;
            b.waited += waited as u64;
        }
        let attempt = (request & 0xffff) as u32; // 0-based
        if attempt < self.cfg.retries {
            let delay = self.cfg.backoff.delay(attempt + 1, &mut self.retry_rng);
            ctx.schedule_in(
                delay,
                StandaloneEvent::Attempt {
                    request: request + 1,
                },
            );
        } else if ctx.now() >= self.cfg.warmup {
            self.clients_failed += 1;
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
                self.submit(client << 16, ctx);
                let x: f64 = Exp1.sample(&mut self.arrivals_rng);
                ctx.schedule_in(
                    super::from_nanos_f64(x * self.ns_per_arrival),
                    StandaloneEvent::Arrival,
                );
            }
            StandaloneEvent::Attempt { request } => self.submit(request, ctx),
            StandaloneEvent::Ca(e) => {
                self.ca.handle(e.kind, ctx, &mut self.out);
                if !self.out.is_empty() {
                    self.outcomes(ctx);
                }
            }
            StandaloneEvent::Dip(on) => {
                let f = match (on, self.cfg.dip) {
                    (true, Some(d)) => d.fraction,
                    _ => 1.0,
                };
                self.ca.set_capacity_fraction(f, ctx);
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
    let mut sim = Simulation::new(StandaloneModel::new(*cfg));
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
        peak_queue: m.ca.peak_queue(),
        queue_end: m.ca.queue_len(),
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
