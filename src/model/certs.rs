//! The agent's side of the certificate path, and csrcleaner.
//!
//! - istio-agent sends one `CreateCertificate` at a time to a ready istiod replica,
//!   chosen at random (stream `istiod-pick/{cluster}`), and waits for the answer without
//!   a deadline; istiod's flow ([`super::ra`]) decides when it answers. Errors (no ready
//!   replica: `Unavailable`; the flow failed: `Internal`) are retried per istio-agent's
//!   policy: 5 calls per inner round with waits 100/200/400/800 ms ±10 %, then an outer
//!   back-off 500 ms x1.5 ±50 % capped at 60 s, for ever.
//! - csrcleaner (kube-controller-manager, hourly): deletes Failed, Issued and Denied CSRs
//!   an hour after their last condition, Pending ones after 24 h, and Approved but
//!   unissued ones after 24 h only with `kubernetes.csr_cleaner_approved_unissued`.

use crate::ca::retry::{AgentBackoff, RetryPolicy};
use crate::engine::{Context, RngStream, SimTime};
use crate::scenario::{AgentSpec, Scenario};

use super::event::Event;
use super::fleet::Fleet;
use super::pods;
use super::state::PodRef;

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
    super::ra::agent_waiting(f, cluster, pod)
}

/// The agent asks for a certificate.
pub fn on_csr_attempt(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    if !waiting_for_cert(f, cluster, pod) {
        return;
    }
    match super::ra::route_ca_request(f, cluster) {
        None => {
            super::journal::no_istiod(f, ctx.now(), cluster);
            agent_error(f, ctx, cluster, pod);
        }
        Some(replica) => super::ra::start_flow(f, ctx, cluster, pod, replica),
    }
}

/// istiod answered the agent's request (`ok`: with a certificate).
pub fn on_flow_done(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef, ok: bool) {
    if super::ra::rotation_done(f, ctx, cluster, pod, ok) {
        return; // a ready pod's rotation
    }
    if !waiting_for_cert(f, cluster, pod) {
        return; // the container that asked is gone
    }
    let now = ctx.now();
    let in_window = f.in_end_window(now);
    let c = f.cluster_mut(cluster);
    if ok {
        c.counters_mut().certs_issued += 1;
        c.note_csr_answer(true, in_window);
        pods::on_certificate(f, ctx, cluster, pod);
        super::ra::schedule_rotation(f, ctx, cluster, pod);
    } else {
        c.counters_mut().csr_timeouts += 1;
        super::journal::csr_timeout(f, now, cluster);
        agent_error(f, ctx, cluster, pod);
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
    p.agent_failures = p.agent_failures.saturating_add(1);
    let failures = u32::from(p.agent_failures);
    let wait = c.agents_mut().retry_wait(&spec.agent, failures);
    super::journal::agent_retry(f, now, cluster, pod.slot, failures, wait);
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

/// csrcleaner (`pkg/controller/certificates/cleaner/cleaner.go`): deletes CSRs by age
/// and condition, then rescans after its period.
pub fn on_csr_cleaner(f: &mut Fleet, ctx: &mut Context<Event>) {
    let now = ctx.now();
    let sc = f.scenario();
    for cluster in 0..f.cluster_count() {
        if sc.clusters[cluster as usize].istiod.ca_mode == crate::scenario::CaMode::IstioCsr {
            continue; // its objects are CertificateRequests: csrcleaner does not see them
        }
        let k = &sc.clusters[cluster as usize].kubernetes;
        let (done_age, pending_age) = (k.csr_failed_max_age, k.csr_pending_max_age);
        let approved_unissued = k.csr_cleaner_approved_unissued;
        let victims = f.cluster(cluster).cert().csrs().select(|o| {
            use super::objects::ObjState;
            match o.state() {
                ObjState::Failed | ObjState::Issued | ObjState::Denied => {
                    o.updated + done_age <= now
                }
                ObjState::Pending => o.created + pending_age <= now,
                ObjState::Approved => approved_unissued && o.created + pending_age <= now,
            }
        });
        if victims.is_empty() {
            continue;
        }
        for key in victims {
            super::ra::delete_object(f, ctx, cluster, key);
        }
        if let Some(ca) = sc.clusters[cluster as usize].ca {
            f.sync_failed_objects(ctx, ca);
        }
    }
    ctx.schedule_in(csr_cleaner_period(sc), Event::CsrCleaner);
}

/// Deletes every Failed CSR object of a cluster (an intervention).
pub fn delete_failed_csrs(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let victims = f
        .cluster(cluster)
        .cert()
        .csrs()
        .select(|o| o.state() == super::objects::ObjState::Failed);
    for key in victims {
        super::ra::delete_object(f, ctx, cluster, key);
    }
    if let Some(ca) = f.spec(cluster).ca {
        f.sync_failed_objects(ctx, ca);
    }
}
