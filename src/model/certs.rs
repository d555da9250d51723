//! The certificate path: istio-agent -> an istiod replica (rate-limited Kubernetes
//! client) -> a CSR object -> the signer -> the shared CA, and back.
//!
//! - The agent sends one request at a time to a ready istiod replica, chosen at random.
//!   Errors (no istiod, istiod's limiter would outlast its wait, istiod gave up) are
//!   retried per istio-agent's policy: 5 inner attempts 100 ms x2 ±10 %, then an outer
//!   back-off 500 ms x1.5 ±50 % capped at 60 s, forever.
//! - istiod reserves `calls_per_csr` tokens of its client limiter (client-go's `Wait`:
//!   if the reservation would outlast the request's deadline it fails at once and no CSR
//!   is created), creates the CSR at the reserved time and waits up to
//!   `ca_wait_timeout` from the agent's request.
//! - The signer calls the CA with its own deadline; past it the CSR is marked Failed and
//!   (with `on_timeout = cancel`) the call is cancelled at the CA, else the CA finishes
//!   it anyway. Failed CSR objects slow the CA (`failed_csr_slowdown_alpha` each) until
//!   csrcleaner deletes them (hourly, older than 1 h) or an intervention does.
//! - A signing that completes after istiod stopped waiting is wasted.

use crate::ca::retry::{AgentBackoff, RetryPolicy};
use crate::ca::{CaOutcome, CaTicket, OnTimeout};
use crate::engine::{rng, Context, SimTime};
use crate::scenario::AgentSpec;

use super::state::{PodPhase, PodRef};
use super::{pods, Event, Fleet};

/// A CSR slot at a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrRef {
    /// Slot.
    pub slot: u32,
    /// Generation.
    pub gen: u32,
}

impl CsrRef {
    /// As the CA's request id.
    pub fn id(self) -> u64 {
        ((self.gen as u64) << 32) | self.slot as u64
    }

    /// From the CA's request id.
    pub fn from_id(id: u64) -> CsrRef {
        CsrRef {
            slot: id as u32,
            gen: (id >> 32) as u32,
        }
    }
}

/// The Kubernetes object of a CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrObject {
    /// Not created (istiod waits for its limiter) or deleted.
    None,
    /// Created, not answered.
    Pending,
    /// Signed.
    Issued,
    /// Marked Failed by the signer (counted in the cluster's failed objects).
    Failed,
}

/// One certificate request in flight.
#[derive(Debug, Clone)]
pub struct Csr {
    /// Generation of the slot.
    pub gen: u32,
    /// Cluster.
    pub cluster: u32,
    /// The requesting pod (at the generation of its agent).
    pub pod: PodRef,
    /// The object.
    pub object: CsrObject,
    /// istiod still waits for it.
    pub waiting: bool,
    /// The CA holds it.
    pub in_ca: bool,
    /// Its handle at the CA.
    pub ticket: Option<CaTicket>,
    /// Slot in use.
    pub live: bool,
}

/// All CSRs in flight, in reusable slots.
#[derive(Debug, Clone, Default)]
pub struct CsrTable {
    slots: Vec<Csr>,
    free: Vec<u32>,
}

impl CsrTable {
    fn alloc(&mut self, cluster: u32, pod: PodRef) -> CsrRef {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Csr {
                    gen: 0,
                    cluster: 0,
                    pod,
                    object: CsrObject::None,
                    waiting: false,
                    in_ca: false,
                    ticket: None,
                    live: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let c = &mut self.slots[slot as usize];
        c.gen = c.gen.wrapping_add(1);
        c.cluster = cluster;
        c.pod = pod;
        c.object = CsrObject::None;
        c.waiting = true;
        c.in_ca = false;
        c.ticket = None;
        c.live = true;
        CsrRef { slot, gen: c.gen }
    }

    fn get(&mut self, r: CsrRef) -> Option<&mut Csr> {
        self.slots
            .get_mut(r.slot as usize)
            .filter(|c| c.live && c.gen == r.gen)
    }

    /// Frees the slot once nobody needs it: istiod stopped waiting, the CA let go and the
    /// object is no longer pending.
    fn release_if_done(&mut self, r: CsrRef) {
        if let Some(c) = self.get(r) {
            if !c.waiting && !c.in_ca && c.object != CsrObject::Pending {
                c.live = false;
                self.free.push(r.slot);
            }
        }
    }
}

/// The agent asks for a certificate.
pub fn on_csr_attempt(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    if !c.state.is_current(pod) || c.state.pods[pod.slot as usize].phase != PodPhase::WaitingCert {
        return;
    }
    if c.istiod.is_empty() {
        c.counters.csr_no_istiod += 1;
        agent_error(f, ctx, cluster, pod);
        return;
    }
    let replicas = c.istiod.len();
    let pick = ((rng::unit_f64(&mut c.rng) * replicas as f64) as usize).min(replicas - 1);
    let replica = &mut c.istiod[pick];
    let deadline = now + spec.istiod.ca_wait_timeout;
    match replica
        .limiter
        .reserve(now, spec.istiod.calls_per_csr, deadline)
    {
        None => {
            c.counters.csr_rate_limited += 1;
            agent_error(f, ctx, cluster, pod);
        }
        Some(at) => {
            let csr = f.csrs.alloc(cluster, pod);
            ctx.schedule_at(deadline, Event::IstiodGiveUp { csr });
            if at == now {
                on_csr_create(f, ctx, csr);
            } else {
                ctx.schedule_at(at, Event::CsrCreate { csr });
            }
        }
    }
}

/// istiod has its tokens: the CSR object is created and the signer calls the CA.
pub fn on_csr_create(f: &mut Fleet, ctx: &mut Context<Event>, csr: CsrRef) {
    let Some(c) = f.csrs.get(csr) else { return };
    if !c.waiting {
        return; // the request context ended first
    }
    let cluster = c.cluster;
    c.object = CsrObject::Pending;
    c.in_ca = true;
    let ca = f.sc.clusters[cluster as usize].ca;
    let cl = &mut f.clusters[cluster as usize];
    cl.counters.csr_requests += 1;
    cl.csr_in_flight += 1;
    let ticket = f.cas[ca].submit(csr.id(), None, OnTimeout::Keep, ctx);
    if let Some(c) = f.csrs.get(csr) {
        c.ticket = Some(ticket);
    }
    let stats = &mut f.ca_stats[ca];
    stats.peak = stats
        .peak
        .max(f.cas[ca].queue_len() + f.cas[ca].in_service() as u64);
    ctx.schedule_in(f.sc.cas[ca].signer_deadline, Event::SignerDeadline { csr });
}

/// istiod's wait is over without a certificate: the agent sees an error.
pub fn on_istiod_give_up(f: &mut Fleet, ctx: &mut Context<Event>, csr: CsrRef) {
    let Some(c) = f.csrs.get(csr) else { return };
    if !c.waiting {
        return;
    }
    c.waiting = false;
    let (cluster, pod) = (c.cluster, c.pod);
    let spec = &f.sc.clusters[cluster as usize];
    if spec.istiod.delete_csr_on_give_up && c.object == CsrObject::Pending {
        c.object = CsrObject::None;
        f.clusters[cluster as usize].csr_in_flight -= 1;
        if c.in_ca && f.sc.cas[spec.ca].on_timeout == OnTimeout::Cancel {
            c.in_ca = false;
            if let Some(t) = c.ticket {
                f.cas[spec.ca].withdraw(t, ctx);
            }
        }
    }
    f.csrs.release_if_done(csr);
    f.clusters[cluster as usize].counters.csr_timeouts += 1;
    let cl = &f.clusters[cluster as usize];
    if cl.state.is_current(pod) && cl.state.pods[pod.slot as usize].phase == PodPhase::WaitingCert {
        agent_error(f, ctx, cluster, pod);
    }
}

/// The signer's deadline: a CSR still pending is marked Failed.
pub fn on_signer_deadline(f: &mut Fleet, ctx: &mut Context<Event>, csr: CsrRef) {
    let now = ctx.now();
    let Some(c) = f.csrs.get(csr) else { return };
    let cluster = c.cluster;
    let ca = f.sc.clusters[cluster as usize].ca;
    if c.in_ca && f.sc.cas[ca].on_timeout == OnTimeout::Cancel {
        c.in_ca = false;
        if let Some(t) = c.ticket {
            f.cas[ca].withdraw(t, ctx);
        }
    }
    if c.object == CsrObject::Pending {
        c.object = CsrObject::Failed;
        let cl = &mut f.clusters[cluster as usize];
        cl.csr_in_flight -= 1;
        cl.failed_csrs.push_back(now);
        cl.counters.csr_failed_peak = cl.counters.csr_failed_peak.max(cl.failed_objects());
        f.sync_failed_objects(ctx, ca);
    }
    f.csrs.release_if_done(csr);
}

/// The CA answered.
pub fn on_ca_outcome(f: &mut Fleet, ctx: &mut Context<Event>, outcome: CaOutcome) {
    let now = ctx.now();
    let CaOutcome::Served { request, .. } = outcome else {
        return; // the fleet passes no deadline to the CA: it keeps its own timers
    };
    let csr = CsrRef::from_id(request);
    let Some(c) = f.csrs.get(csr) else { return };
    c.in_ca = false;
    let (cluster, pod, waiting) = (c.cluster, c.pod, c.waiting);
    let pending = c.object == CsrObject::Pending;
    if pending {
        c.object = CsrObject::Issued; // istiod deletes issued CSRs itself
    }
    c.waiting = false;
    f.csrs.release_if_done(csr);
    let in_window = now >= f.window_start;
    let cl = &mut f.clusters[cluster as usize];
    if pending {
        cl.csr_in_flight -= 1;
    }
    let alive =
        cl.state.is_current(pod) && cl.state.pods[pod.slot as usize].phase == PodPhase::WaitingCert;
    if waiting && pending && alive {
        cl.counters.certs_issued += 1;
        cl.aimd.attempts += 1;
        if in_window {
            cl.window.attempts += 1;
            cl.window.delivered += 1;
        }
        pods::on_certificate(f, ctx, cluster, pod);
    } else {
        cl.counters.csr_wasted_signings += 1;
    }
}

/// The agent's request failed: retry per istio-agent's policy.
fn agent_error(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let in_window = now >= f.window_start;
    let c = &mut f.clusters[cluster as usize];
    c.aimd.attempts += 1;
    c.aimd.errors += 1;
    if in_window {
        c.window.attempts += 1;
    }
    let p = &mut c.state.pods[pod.slot as usize];
    p.agent_failures += 1;
    let wait = agent_policy(&spec.agent).delay(p.agent_failures, &mut c.rng);
    ctx.schedule_in(wait.max(SimTime(1)), Event::CsrAttempt { cluster, pod });
}

/// istio-agent's retry policy with the scenario's parameters.
pub fn agent_policy(a: &AgentSpec) -> RetryPolicy {
    RetryPolicy::Agent(AgentBackoff {
        inner_attempts: a.inner_attempts,
        inner_base: a.inner_initial,
        outer_initial: a.outer_initial,
        outer_max: a.outer_max,
        ..AgentBackoff::default()
    })
}

/// csrcleaner: deletes Failed CSR objects older than the limit, then rescans.
pub fn on_csr_cleaner(f: &mut Fleet, ctx: &mut Context<Event>) {
    let now = ctx.now();
    let mut touched = vec![false; f.cas.len()];
    for (i, c) in f.clusters.iter_mut().enumerate() {
        let spec = &f.sc.clusters[i];
        let max_age = spec.kubernetes.csr_failed_max_age;
        let before = c.failed_csrs.len();
        while c.failed_csrs.front().is_some_and(|&t| t + max_age <= now) {
            c.failed_csrs.pop_front();
        }
        if c.failed_csrs.len() != before {
            touched[spec.ca] = true;
        }
    }
    for (ca, t) in touched.into_iter().enumerate() {
        if t {
            f.sync_failed_objects(ctx, ca);
        }
    }
    let period =
        f.sc.clusters
            .iter()
            .map(|c| c.kubernetes.csr_cleaner_period)
            .min()
            .unwrap_or(SimTime::from_secs(3600));
    ctx.schedule_in(period, Event::CsrCleaner);
}

/// Deletes every Failed CSR object of a cluster (an intervention).
pub fn delete_failed_csrs(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    f.clusters[cluster as usize].failed_csrs.clear();
    let ca = f.sc.clusters[cluster as usize].ca;
    f.sync_failed_objects(ctx, ca);
}
