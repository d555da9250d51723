//! istio-csr in the fleet model (`istiod.ca_mode = "istio-csr"`): agents call istio-csr
//! (`CA_ADDR`) instead of istiod; each `CreateCertificate` becomes a cert-manager
//! CertificateRequest that aws-privateca-issuer reconciles against AWS Private CA.
//!
//! Source: cert-manager/istio-csr (f96fca5, = v0.14+ layout) `pkg/server/server.go`
//! `CreateCertificate` (authenticate, cap the duration at
//! `--max-client-certificate-duration` 1 h, `Sign`) and `pkg/certmanager/certmanager.go`
//! `Sign` / `waitForCertificateRequest`: Create, a watch by name, a Get, then wait on the
//! watch **on the gRPC context** (no timeout of its own) until the CR has its
//! certificate, is Denied, Failed or deleted; the CR is deleted afterwards in a
//! goroutine with `context.Background()` unless `--preserve-certificate-requests`.
//! Every replica serves (`NeedLeaderElection() = false`); its Kubernetes clients are
//! client-go defaults (5 QPS / 10 burst: `RestConfig` without QPS/Burst set).
//!
//! # Model
//! - The agent's request goes to one of `signer.replicas` istio-csr processes, chosen
//!   with the cluster's `istiod-pick` stream (the Service's endpoints). istio-csr's pods
//!   are not scheduled on the upgraded nodes: they are always up.
//! - The flow is [`IstioCsrFlow`]: TokenReview (the istio kube client's bucket), CR
//!   Create, watch (no token), Get, wait, Delete (the cert-manager client's bucket).
//! - cert-manager's internal approver (`certificaterequests-approver`,
//!   `pkg/controller/certificaterequests/approver/{approver,sync}.go`) approves every CR
//!   it sees that is not yet Approved, Denied, Issued or Failed: one `UpdateStatus`
//!   (condition Approved) through cert-manager's client (`--kube-api-qps` 20 / burst 50),
//!   after the informer's delay; aws-privateca-issuer reconciles the CR only once its
//!   informer shows the approval. Its `Approved` event (a separate clientset) and its 5
//!   workers are not modelled (the bucket binds first), nor its requeue after a call
//!   client-go gave up on.
//! - The agent's container going away (killed by the startup probe, deleted) cancels
//!   the gRPC context: a waiting flow ends at once and deletes its CR; a flow in an
//!   API call ends when that call returns.

use crate::control::apiserver::{ApiRequest, ApiServer, ClientId, Identity, Resource, Verb};
use crate::control::certificates::CertControllersConfig;
use crate::control::client::RestClient;
use crate::control::signer::{CrState, IstioCsrAction, IstioCsrFlow, ObjectView};
use crate::engine::Context;
use crate::scenario::{CaMode, ClusterSpec};

use super::super::event::Event;
use super::super::fleet::Fleet;
use super::super::objects::ObjKey;
use super::super::state::PodRef;
use super::{dispatch, finish_flow, notify, CertPath, FlowRef, Owner, PendingCall};

/// cert-manager's controller process as the approver of istio-csr's CRs: its client.
pub struct Approver {
    /// cert-manager's client (`--kube-api-qps` 20, `--kube-api-burst` 50).
    client: RestClient,
    /// Its apiserver identity.
    id: ClientId,
}

/// cert-manager's approver of cluster `spec`, if its agents go to istio-csr.
pub(super) fn approver(spec: &ClusterSpec, api: &mut ApiServer) -> Option<Approver> {
    if spec.istiod.ca_mode != CaMode::IstioCsr {
        return None;
    }
    let config = CertControllersConfig::default();
    Some(Approver {
        client: RestClient::client_go(config.qps, config.burst),
        id: api.register_client(&Identity::service_account("cert-manager", "cert-manager")),
    })
}

/// The approver's informer delivered CR `key` (resourceVersion `version`): if it is not
/// yet approved, denied or done, the approver writes the Approved condition.
pub(super) fn approve(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    key: ObjKey,
    view: &ObjectView,
) {
    if view.approved || view.denied || view.failed || view.has_certificate {
        return;
    }
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(a) = cp.approver.as_mut() else {
        return;
    };
    let send_at = a
        .client
        .acquire(ctx.now(), false, None)
        .expect("no deadline");
    let req = ApiRequest::new(a.id, Verb::Update, Resource::Other).in_namespace(2);
    let owner = Owner::Approver {
        key,
        version: view.version,
    };
    let tag = cp.alloc_call(owner, req, u32::MAX);
    dispatch(f, ctx, cluster, tag, send_at);
}

/// The approver's client (its calls' limiter and retry rule).
pub(super) fn approver_client(cp: &mut CertPath) -> Option<&mut RestClient> {
    cp.approver.as_mut().map(|a| &mut a.client)
}

/// The approver's `UpdateStatus` landed: approved, unless the CR is gone or was written
/// since the approver read it (409).
pub(super) fn on_approved(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    key: ObjKey,
    version: u64,
) {
    let now = ctx.now();
    let cp = f.cluster_mut(cluster).cert_mut();
    if cp.csrs.get(key).is_some_and(|o| o.version == version) {
        cp.csrs.update(key, now, |o| o.approved = true);
        cp.stats.cr_approvals += 1;
        notify(cp, ctx, cluster, key);
    }
}

/// One istio-csr process: its two Kubernetes clients.
#[derive(Debug, Clone)]
pub struct IstioCsrServer {
    /// The istio kube client (TokenReviews).
    istio: RestClient,
    /// The cert-manager client (CertificateRequests).
    cm: RestClient,
    /// Its apiserver identity.
    id: ClientId,
}

/// Which of istio-csr's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrCall {
    /// TokenReview create.
    TokenReview,
    /// CertificateRequest create.
    Create,
    /// Watch by name.
    Watch,
    /// Get.
    Get,
}

/// The istio-csr replicas of a cluster (none unless `ca_mode = "istio-csr"`).
pub(super) fn servers(spec: &ClusterSpec, api: &mut ApiServer) -> Vec<IstioCsrServer> {
    if spec.istiod.ca_mode != CaMode::IstioCsr {
        return Vec::new();
    }
    let id = api.register_client(&Identity::service_account(
        "cert-manager",
        "cert-manager-istio-csr",
    ));
    let s = &spec.signer;
    (0..s.replicas)
        .map(|_| IstioCsrServer {
            istio: RestClient::client_go(s.client_qps, s.client_burst),
            cm: RestClient::client_go(s.client_qps, s.client_burst),
            id,
        })
        .collect()
}

/// The agent's `CreateCertificate` reached istio-csr replica `replica`.
pub(super) fn start(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    replica: u32,
) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let flow = cp.alloc_flow(pod, replica, None);
    let mut fl = IstioCsrFlow::new();
    let action = fl.start();
    cp.flows[flow.slot as usize].icsr = Some(fl);
    act(f, ctx, cluster, flow, action);
}

/// Carries out the flow's next action.
fn act(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    flow: FlowRef,
    action: IstioCsrAction,
) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let call = match action {
        IstioCsrAction::TokenReview => CsrCall::TokenReview,
        IstioCsrAction::CreateCr => CsrCall::Create,
        IstioCsrAction::WatchCr => CsrCall::Watch,
        IstioCsrAction::GetCr => CsrCall::Get,
        IstioCsrAction::AwaitCr => {
            let fl = &mut cp.flows[flow.slot as usize];
            if fl.cancelled {
                // The watch returns at once: "watcher channel closed".
                return end(f, ctx, cluster, flow, false);
            }
            fl.step += 1;
            fl.awaiting = true;
            if let Some(k) = fl.csr {
                cp.csrs.annotate(k, |o| o.waiter = Some(flow));
            }
            return;
        }
        IstioCsrAction::Done { result, .. } => return end(f, ctx, cluster, flow, result.is_ok()),
    };
    issue(f, ctx, cluster, flow, call);
}

/// Takes the call's token and sends it.
fn issue(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, flow: FlowRef, call: CsrCall) {
    let now = ctx.now();
    let cp = f.cluster_mut(cluster).cert_mut();
    let replica = cp.flows[flow.slot as usize].replica;
    let srv = &mut cp.csr_servers[replica as usize];
    let send_at = match call {
        CsrCall::TokenReview => srv.istio.acquire(now, false, None),
        CsrCall::Watch => srv.cm.acquire(now, true, None),
        CsrCall::Create | CsrCall::Get => srv.cm.acquire(now, false, None),
    }
    .expect("no deadline");
    let req = request(srv.id, call);
    let tag = cp.alloc_call(Owner::IstioCsr { flow, call }, req, replica);
    dispatch(f, ctx, cluster, tag, send_at);
}

/// What APF sees of a call (CRs live in istio-csr's namespace).
fn request(id: ClientId, call: CsrCall) -> ApiRequest {
    match call {
        CsrCall::TokenReview => ApiRequest::new(id, Verb::Create, Resource::Other),
        CsrCall::Create => ApiRequest::new(id, Verb::Create, Resource::Other).in_namespace(2),
        CsrCall::Watch => ApiRequest::new(id, Verb::Watch, Resource::Other)
            .in_namespace(2)
            .by_name(),
        CsrCall::Get => ApiRequest::new(id, Verb::Get, Resource::Other).in_namespace(2),
    }
}

fn delete_request(id: ClientId) -> ApiRequest {
    ApiRequest::new(id, Verb::Delete, Resource::Other).in_namespace(2)
}

/// The flow ends: the agent gets its answer; the CR is deleted after (a goroutine).
fn end(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, flow: FlowRef, ok: bool) {
    let now = ctx.now();
    let cp = f.cluster_mut(cluster).cert_mut();
    let fl = &mut cp.flows[flow.slot as usize];
    let (pod, replica, key) = (fl.pod, fl.replica, fl.csr.take());
    cp.free_flow(flow);
    if let Some(k) = key {
        cp.csrs.annotate(k, |o| {
            o.waiter = None;
            o.owned = false;
        });
        if cp.preserve_crs {
            if cp.csrs.get(k).is_some() {
                cp.stats.csr_orphaned += 1;
            }
        } else {
            let srv = &mut cp.csr_servers[replica as usize];
            let send_at = srv.cm.acquire(now, false, None).expect("no deadline");
            let req = delete_request(srv.id);
            let tag = cp.alloc_call(Owner::IstioCsrDelete { key: k }, req, replica);
            dispatch(f, ctx, cluster, tag, send_at);
        }
    }
    finish_flow(f, ctx, cluster, pod, ok);
}

/// An istio-csr call's reply: its effect lands now, the flow moves on.
pub(super) fn on_done(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    flow: FlowRef,
    call: CsrCall,
) {
    let now = ctx.now();
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(fl) = cp.flow_mut(flow) else { return };
    let key = fl.csr;
    let cr = match call {
        CsrCall::Create => {
            let k = cp.csrs.create(now, true);
            cp.flows[flow.slot as usize].csr = Some(k);
            notify(cp, ctx, cluster, k);
            CrState::Pending
        }
        CsrCall::Get => cr_state(cp, key),
        CsrCall::TokenReview | CsrCall::Watch => CrState::Pending,
    };
    reply(f, ctx, cluster, flow, true, cr);
}

fn cr_state(cp: &CertPath, key: Option<ObjKey>) -> CrState {
    match key.and_then(|k| cp.csrs.get(k)) {
        None => CrState::Deleted,
        Some(o) if o.failed || o.denied => CrState::Failed,
        Some(o) if o.has_certificate => CrState::Signed,
        Some(_) => CrState::Pending,
    }
}

fn reply(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    flow: FlowRef,
    ok: bool,
    cr: CrState,
) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(fl) = cp.flow_mut(flow) else { return };
    let cancelled = fl.cancelled;
    let Some(m) = fl.icsr.as_mut() else { return };
    // A cancelled context fails the next call.
    let action = m.next(ok && !cancelled, cr);
    act(f, ctx, cluster, flow, action);
}

/// The watch of a waiting flow saw its CR change (certificate, Failed, deleted).
pub(super) fn on_wake(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, flow: FlowRef) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(fl) = cp.flow_mut(flow) else { return };
    if !fl.awaiting {
        return;
    }
    fl.awaiting = false;
    fl.step += 1;
    let key = fl.csr;
    if let Some(k) = key {
        cp.csrs.annotate(k, |o| o.waiter = None);
    }
    let cr = cr_state(cp, key);
    if cr == CrState::Pending {
        // Nothing terminal yet: keep waiting.
        let fl = &mut cp.flows[flow.slot as usize];
        fl.awaiting = true;
        if let Some(k) = key {
            cp.csrs.annotate(k, |o| o.waiter = Some(flow));
        }
        return;
    }
    reply(f, ctx, cluster, flow, true, cr);
}

/// Wakes the istio-csr flow waiting on object `key`, if any.
pub(super) fn wake_waiter(cp: &mut CertPath, ctx: &mut Context<Event>, cluster: u32, key: ObjKey) {
    if let Some(w) = cp.csrs.get(key).and_then(|o| o.waiter) {
        wake_flow(cp, ctx, cluster, w);
    }
}

/// Wakes flow `w` now if it is an istio-csr flow (istiod's flows keep their rules).
pub(super) fn wake_flow(cp: &mut CertPath, ctx: &mut Context<Event>, cluster: u32, w: FlowRef) {
    let Some(fl) = cp.flow_mut(w) else { return };
    if fl.icsr.is_none() {
        return;
    }
    let step = fl.step;
    ctx.schedule_at(
        ctx.now(),
        Event::FlowWake {
            cluster,
            flow: w,
            step,
        },
    );
}

/// The client a call of istio-csr's was sent through: the istio kube client for
/// TokenReviews, the cert-manager client for the rest.
pub(super) fn client_mut<'a>(cp: &'a mut CertPath, pc: &PendingCall) -> &'a mut RestClient {
    let srv = &mut cp.csr_servers[pc.replica as usize];
    match pc.owner {
        Owner::IstioCsr {
            call: CsrCall::TokenReview,
            ..
        } => &mut srv.istio,
        _ => &mut srv.cm,
    }
}

/// client-go gave up on one of istio-csr's calls (a 429 with no retry left): the flow's
/// call fails; a failed Delete leaves its CR behind ("failed to delete
/// CertificateRequest").
pub(super) fn gave_up(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pc: PendingCall) {
    match pc.owner {
        Owner::IstioCsr { flow, .. } => reply(f, ctx, cluster, flow, false, CrState::Pending),
        Owner::IstioCsrDelete { key } => {
            let cp = f.cluster_mut(cluster).cert_mut();
            if cp.csrs.get(key).is_some() {
                cp.stats.csr_orphaned += 1;
            }
        }
        _ => {}
    }
}

/// The agent of `pod` is gone (its container killed or its pod deleted): istio-csr's
/// gRPC context is cancelled.
pub fn agent_gone(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    if f.spec(cluster).istiod.ca_mode != CaMode::IstioCsr {
        return;
    }
    let cp = f.cluster_mut(cluster).cert_mut();
    // A rotation in flight dies with the agent: neither a failed request nor one to
    // retry (the cancelled flow's answer below finds no rotation out).
    super::rotation::abandon(&mut cp.rotating, pod);
    let mut waiting = Vec::new();
    for slot in 0..cp.flows.len() {
        let fl = &mut cp.flows[slot];
        if !fl.live || fl.icsr.is_none() || fl.pod.slot != pod.slot || fl.pod.gen != pod.gen {
            continue;
        }
        fl.cancelled = true;
        if fl.awaiting {
            fl.awaiting = false;
            fl.step += 1;
            waiting.push(FlowRef {
                slot: slot as u32,
                gen: fl.gen,
            });
        }
    }
    for flow in waiting {
        end(f, ctx, cluster, flow, false);
    }
}

#[cfg(test)]
mod tests {
    /// One cluster on istio-csr, `pods` injected pods restarted at 1 min; `extra`: more
    /// keys of `[cluster.c.signer]`.
    fn scenario(pods: u32, extra: &str) -> crate::scenario::Scenario {
        let restart = r#"
[intervention.restart]
at = "1m"
action = "restart_workloads"
"#;
        super::super::istio_csr_fleet("1.22.0", "20m", pods, extra, restart)
    }

    /// istio-csr's calls per certificate on success (`certmanager.go` `Sign`): one
    /// TokenReview, one CR Create, one Get, one Delete through its clients, and on the
    /// issuer side one `IssueCertificate` per CR; every CR is deleted after use.
    #[test]
    fn istio_csr_calls_per_certificate_on_success() {
        let sc = scenario(20, "");
        let out = super::super::super::run(&sc, 1, "h");
        let c = &out.summary.clusters[0].figures;
        // 20 pods restarted at 1 min; before that, the steady-state pods whose 1 h
        // certificate was due (rotation at 30 min) rotated; none after (the new
        // certificates rotate at ~31 min, past the horizon).
        assert_eq!(
            c.csr_requests,
            20 + c.cert_rotations,
            "one request per certificate"
        );
        assert!(
            c.pca_issue_calls >= c.csr_requests,
            "at least one IssueCertificate per CR"
        );
        assert!(c.recovered);
        assert_eq!(c.csr_orphaned, 0, "every CR deleted");
    }

    /// cert-manager's approver approves every CR once, through its own client, and
    /// aws-privateca-issuer signs none before: approvals = CRs created = IssueCertificate
    /// calls' lower bound.
    #[test]
    fn every_cr_is_approved_once_by_cert_managers_approver_before_it_is_signed() {
        use crate::engine::{Limits, Simulation};
        let sc = scenario(20, "");
        let mut sim = Simulation::new(super::super::super::fleet::Fleet::new(&sc, 1));
        sim.init(|f, ctx| f.start(ctx));
        let r = sim.run(Limits {
            horizon: sc.horizon,
            max_events: u64::MAX,
        });
        let stats = sim.model.cluster(0).cert().stats().clone();
        assert!(stats.cr_approvals >= 20, "{}", stats.cr_approvals);
        let s = sim.model.summarize(&r, 1, "h", 0.0);
        let f = &s.clusters[0].figures;
        assert_eq!(stats.cr_approvals, f.csr_requests, "one approval per CR");
        assert!(f.pca_issue_calls >= stats.cr_approvals);
    }

    /// With `--preserve-certificate-requests` nothing is deleted: every CR stays.
    #[test]
    fn preserved_certificate_requests_stay_behind() {
        let sc = scenario(20, "preserve_certificate_requests = true");
        let out = super::super::super::run(&sc, 1, "h");
        let c = &out.summary.clusters[0].figures;
        assert_eq!(c.csr_orphaned, c.csr_requests);
        assert!(c.csr_requests >= 20);
    }

    /// istio-csr waits without a timeout of its own: with AWS PCA throttling every
    /// IssueCertificate (a 0/s quota is refused by validation, so a tiny one), the SDK's
    /// attempts fail, aws-privateca-issuer marks the CR Failed, istio-csr answers
    /// `Internal` and the agent retries with a new CR: several CRs per certificate.
    #[test]
    fn throttled_pca_fails_the_cr_and_the_agent_retries_with_a_new_one() {
        let mut sc = scenario(20, "");
        if let crate::scenario::IssuerKind::AwsPca { config, .. } = &mut sc.cas[0].kind {
            config.issue_rate_per_s = 0.05;
            config.issue_burst = 1;
        }
        let out = super::super::super::run(&sc, 1, "h");
        let c = &out.summary.clusters[0].figures;
        assert!(c.csr_requests > 20, "{}", c.csr_requests);
        assert!(c.csr_failed_objects_peak >= 1);
        // At least one IssueCertificate per CR (the SDK's retries stop early once
        // its retry quota is spent).
        assert!(
            c.pca_issue_calls >= c.csr_requests,
            "{} calls, {} requests",
            c.pca_issue_calls,
            c.csr_requests
        );
    }
}
