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

use std::collections::VecDeque;

use crate::ca::retry::{AgentBackoff, RetryPolicy};
use crate::ca::{CaOutcome, CaTicket, OnTimeout};
use crate::engine::{Context, RngStream, SimTime};
use crate::scenario::{AgentSpec, Scenario};

use super::event::Event;
use super::fleet::Fleet;
use super::pods;
use super::state::{PodPhase, PodRef};

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
    /// A slot for a new CSR of `pod`.
    pub fn alloc(&mut self, cluster: u32, pod: PodRef) -> CsrRef {
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

    /// The CSR `r` names, if it is still in flight.
    pub fn get(&mut self, r: CsrRef) -> Option<&mut Csr> {
        self.slots
            .get_mut(r.slot as usize)
            .filter(|c| c.live && c.gen == r.gen)
    }

    /// Frees the slot once nobody needs it: istiod stopped waiting, the CA let go and the
    /// object is no longer pending.
    pub fn release_if_done(&mut self, r: CsrRef) {
        if let Some(c) = self.get(r) {
            if !c.waiting && !c.in_ca && c.object != CsrObject::Pending {
                c.live = false;
                self.free.push(r.slot);
            }
        }
    }
}

/// A cluster's CSR objects as the Kubernetes API holds them: how many are pending, and
/// the Failed ones by the time they failed (csrcleaner deletes by age).
#[derive(Debug, Clone, Default)]
pub struct CsrObjects {
    failed: VecDeque<SimTime>,
    in_flight: u32,
    failed_peak: u64,
}

impl CsrObjects {
    /// A CSR object was created (pending).
    pub fn created(&mut self) {
        self.in_flight += 1;
    }

    /// A pending object was signed or deleted.
    pub fn answered(&mut self) {
        self.in_flight -= 1;
    }

    /// A pending object was marked Failed at `now`.
    pub fn failed(&mut self, now: SimTime) {
        self.in_flight -= 1;
        self.failed.push_back(now);
        self.failed_peak = self.failed_peak.max(self.failed_count());
    }

    /// Objects pending.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Failed objects present.
    pub fn failed_count(&self) -> u64 {
        self.failed.len() as u64
    }

    /// The most Failed objects present at once.
    pub fn failed_peak(&self) -> u64 {
        self.failed_peak
    }

    /// csrcleaner: deletes Failed objects at least `max_age` old; whether any went.
    pub fn clean(&mut self, now: SimTime, max_age: SimTime) -> bool {
        let before = self.failed.len();
        while self.failed.front().is_some_and(|&t| t + max_age <= now) {
            self.failed.pop_front();
        }
        self.failed.len() != before
    }

    /// Deletes every Failed object (an intervention).
    pub fn delete_failed(&mut self) {
        self.failed.clear();
    }
}

/// The istio-agents of a cluster's injected pods, as far as they share state: the
/// cluster's `agent-jitter` stream.
#[derive(Debug, Clone)]
pub struct Agents {
    jitter: RngStream,
}

impl Agents {
    /// Agents drawing their jitter from `jitter`.
    pub fn new(jitter: RngStream) -> Self {
        Agents { jitter }
    }

    /// How long an agent waits before attempt `failures + 1`: istio-agent's retry policy
    /// with its jitter.
    pub fn retry_wait(&mut self, agent: &AgentSpec, failures: u32) -> SimTime {
        agent_policy(agent).delay(failures, &mut self.jitter)
    }
}

/// Whether the pod is still the agent's and waiting for its certificate.
fn waiting_for_cert(f: &Fleet, cluster: u32, pod: PodRef) -> bool {
    let s = f.cluster(cluster).objects();
    s.is_current(pod) && s.pods[pod.slot as usize].phase == PodPhase::WaitingCert
}

/// The agent asks for a certificate.
pub fn on_csr_attempt(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    if !waiting_for_cert(f, cluster, pod) {
        return;
    }
    let c = f.cluster_mut(cluster);
    let deadline = now + spec.istiod.ca_wait_timeout;
    let reserved = match c.istiod_mut().pick() {
        None => {
            c.counters_mut().csr_no_istiod += 1;
            agent_error(f, ctx, cluster, pod);
            return;
        }
        Some(replica) => replica.reserve(now, spec.istiod.calls_per_csr, deadline),
    };
    match reserved {
        None => {
            c.counters_mut().csr_rate_limited += 1;
            agent_error(f, ctx, cluster, pod);
        }
        Some(at) => {
            let csr = f.csr_table_mut().alloc(cluster, pod);
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
    let Some(c) = f.csr_table_mut().get(csr) else {
        return;
    };
    if !c.waiting {
        return; // the request context ended first
    }
    let cluster = c.cluster;
    c.object = CsrObject::Pending;
    c.in_ca = true;
    let ca = f.spec(cluster).ca;
    let cl = f.cluster_mut(cluster);
    cl.counters_mut().csr_requests += 1;
    cl.csrs_mut().created();
    let ticket = f.ca_mut(ca).submit(csr.id(), None, OnTimeout::Keep, ctx);
    if let Some(c) = f.csr_table_mut().get(csr) {
        c.ticket = Some(ticket);
    }
    f.note_ca_load(ca);
    let deadline = f.scenario().cas[ca].signer_deadline;
    ctx.schedule_in(deadline, Event::SignerDeadline { csr });
}

/// istiod's wait is over without a certificate: the agent sees an error.
pub fn on_istiod_give_up(f: &mut Fleet, ctx: &mut Context<Event>, csr: CsrRef) {
    let sc = f.scenario();
    let Some(c) = f.csr_table_mut().get(csr) else {
        return;
    };
    if !c.waiting {
        return;
    }
    c.waiting = false;
    let (cluster, pod) = (c.cluster, c.pod);
    let spec = &sc.clusters[cluster as usize];
    let mut answered = false;
    let mut withdraw = None;
    if spec.istiod.delete_csr_on_give_up && c.object == CsrObject::Pending {
        c.object = CsrObject::None;
        answered = true;
        if c.in_ca && sc.cas[spec.ca].on_timeout == OnTimeout::Cancel {
            c.in_ca = false;
            withdraw = c.ticket;
        }
    }
    if answered {
        f.cluster_mut(cluster).csrs_mut().answered();
    }
    if let Some(t) = withdraw {
        f.ca_mut(spec.ca).withdraw(t, ctx);
    }
    f.csr_table_mut().release_if_done(csr);
    f.cluster_mut(cluster).counters_mut().csr_timeouts += 1;
    if waiting_for_cert(f, cluster, pod) {
        agent_error(f, ctx, cluster, pod);
    }
}

/// The signer's deadline: a CSR still pending is marked Failed.
pub fn on_signer_deadline(f: &mut Fleet, ctx: &mut Context<Event>, csr: CsrRef) {
    let now = ctx.now();
    let sc = f.scenario();
    let Some(c) = f.csr_table_mut().get(csr) else {
        return;
    };
    let cluster = c.cluster;
    let ca = sc.clusters[cluster as usize].ca;
    let mut withdraw = None;
    if c.in_ca && sc.cas[ca].on_timeout == OnTimeout::Cancel {
        c.in_ca = false;
        withdraw = c.ticket;
    }
    let pending = c.object == CsrObject::Pending;
    if pending {
        c.object = CsrObject::Failed;
    }
    if let Some(t) = withdraw {
        f.ca_mut(ca).withdraw(t, ctx);
    }
    if pending {
        f.cluster_mut(cluster).csrs_mut().failed(now);
        f.sync_failed_objects(ctx, ca);
    }
    f.csr_table_mut().release_if_done(csr);
}

/// The CA answered.
pub fn on_ca_outcome(f: &mut Fleet, ctx: &mut Context<Event>, outcome: CaOutcome) {
    let now = ctx.now();
    let CaOutcome::Served { request, .. } = outcome else {
        return; // the fleet passes no deadline to the CA: it keeps its own timers
    };
    let csr = CsrRef::from_id(request);
    let Some(c) = f.csr_table_mut().get(csr) else {
        return;
    };
    c.in_ca = false;
    let (cluster, pod, waiting) = (c.cluster, c.pod, c.waiting);
    let pending = c.object == CsrObject::Pending;
    if pending {
        c.object = CsrObject::Issued; // istiod deletes issued CSRs itself
    }
    c.waiting = false;
    f.csr_table_mut().release_if_done(csr);
    let in_window = f.in_end_window(now);
    let alive = waiting_for_cert(f, cluster, pod);
    let cl = f.cluster_mut(cluster);
    if pending {
        cl.csrs_mut().answered();
    }
    if waiting && pending && alive {
        cl.counters_mut().certs_issued += 1;
        cl.note_csr_answer(true, in_window);
        pods::on_certificate(f, ctx, cluster, pod);
    } else {
        cl.counters_mut().csr_wasted_signings += 1;
    }
}

/// The agent's request failed: retry per istio-agent's policy.
fn agent_error(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let in_window = f.in_end_window(now);
    let c = f.cluster_mut(cluster);
    c.note_csr_answer(false, in_window);
    let p = &mut c.objects_mut().pods[pod.slot as usize];
    p.agent_failures += 1;
    let failures = p.agent_failures;
    let wait = c.agents_mut().retry_wait(&spec.agent, failures);
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

/// csrcleaner's period: the shortest of the clusters' (one scan serves the fleet).
pub fn csr_cleaner_period(sc: &Scenario) -> SimTime {
    sc.clusters
        .iter()
        .map(|c| c.kubernetes.csr_cleaner_period)
        .min()
        .unwrap_or(SimTime::from_secs(3600))
}

/// csrcleaner: deletes Failed CSR objects older than the limit, then rescans.
pub fn on_csr_cleaner(f: &mut Fleet, ctx: &mut Context<Event>) {
    let now = ctx.now();
    let sc = f.scenario();
    let mut touched = vec![false; f.ca_count()];
    for (i, c) in f.clusters_mut().iter_mut().enumerate() {
        let spec = &sc.clusters[i];
        if c.csrs_mut().clean(now, spec.kubernetes.csr_failed_max_age) {
            touched[spec.ca] = true;
        }
    }
    for (ca, t) in touched.into_iter().enumerate() {
        if t {
            f.sync_failed_objects(ctx, ca);
        }
    }
    ctx.schedule_in(csr_cleaner_period(sc), Event::CsrCleaner);
}

/// Deletes every Failed CSR object of a cluster (an intervention).
pub fn delete_failed_csrs(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    f.cluster_mut(cluster).csrs_mut().delete_failed();
    let ca = f.spec(cluster).ca;
    f.sync_failed_objects(ctx, ca);
}
