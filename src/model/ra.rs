//! A cluster's certificate path with the control-plane components: the kube-apiserver
//! (APF, [`crate::control::apiserver`]), istiod's CA server with its RA flow per release
//! ([`crate::control::chiron`]) on each replica's client-go limiter
//! ([`crate::control::client`]), the CSR objects ([`super::objects`]), the signer
//! controller ([`crate::control::signer`]) and the fleet's issuers
//! ([`crate::control::issuer`], [`crate::ca`]).
//!
//! # Routing
//! - An agent's `CreateCertificate` goes to a ready istiod replica (stream
//!   `istiod-pick/{cluster}`) and becomes a [`Flow`]: a TokenReview, then
//!   (`kubernetes-ra`) the chiron flow of `istiod.version`; with the built-in CA
//!   (`ca_mode = "istiod"`) the certificate is signed in process after the TokenReview.
//! - Every API call takes a token from the replica's limiter (no deadline:
//!   `context.TODO()`), then goes through the cluster's apiserver; a watch takes no token.
//!   A 429 is retried by client-go (Retry-After, new token, at most 10 retries); then
//!   the flow sees an error.
//! - Effects land when the apiserver's reply leaves (`done_at`): Create makes the CSR
//!   object, Approve sets `Approved`, Delete removes it; every write reaches the signer's
//!   informer after `signer.informer_delay`, coalesced per object.
//! - The watch of a flow ends when the signer's certificate write lands (or at the
//!   release's timeout). A flow whose Delete failed, or whose replica terminated mid-flow
//!   with its CSR created, leaves the CSR behind: `csr_orphaned`.
//! - The signer's API requests go through the same apiserver with the signer's own
//!   limiter (inside [`Signer`]); its issuer calls go to the fleet-level issuer the
//!   cluster names (`ca`).
//!
//! # Event economy
//! One event per API call when the limiter grants at once and the apiserver has free
//! seats (the reply); one more when the limiter makes it wait (the send).

use crate::control::apiserver::{
    Admission, ApiOutcome, ApiRequest, ApiServer, ApiServerEvent, ClientId, Identity, Resource,
    Verb,
};
use crate::control::chiron::{self, Action, Call, CallResult, ChironFlow, CsrState, Input};
use crate::control::client::{Reply, RestClient, RetryDecision};
use crate::control::signer::{
    ApiCall, ApiOp, ApiReply, AwsPcaIssuerConfig, BuiltinIssuer, CertManagerConfig,
    ControllerRuntimeConfig, InformerEvent, IssuerCall, IssuerReply, JobRef, Signer, SignerConfig,
    SignerEvent, SignerOutput,
};
use crate::engine::{Context, RngStream, SimTime};
use crate::scenario::{CaMode, ClusterSpec, IssuerKind, Scenario, SignerKind};

use super::event::Event;
use super::fleet::{Cluster, Fleet};
use super::objects::{ObjKey, ObjectStore};
use super::state::{PodPhase, PodRef};

mod istiocsr;
mod rotation;
pub use istiocsr::{agent_gone, IstioCsrServer};
pub use rotation::{on_rotation_due, rotation_done, schedule_initial_rotations, schedule_rotation};

/// A flow slot at a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowRef {
    /// Slot.
    pub slot: u32,
    /// Generation.
    pub gen: u32,
}

/// One `CreateCertificate` in an istiod replica.
#[derive(Debug, Clone)]
struct Flow {
    gen: u32,
    live: bool,
    /// The agent (at its container's generation).
    pod: PodRef,
    /// The replica's pod slot.
    replica: u32,
    /// The RA flow (`None`: the built-in CA).
    chiron: Option<ChironFlow>,
    /// Its CSR object once created.
    csr: Option<ObjKey>,
    /// Timer generation (sleep, watch timeout, watch fire).
    step: u32,
    /// Waiting on its watch.
    awaiting: bool,
    /// The built-in CA: the TokenReview answered.
    authenticated: bool,
    /// istio-csr's `CreateCertificate` (`None`: istiod's).
    icsr: Option<crate::control::signer::IstioCsrFlow>,
    /// istio-csr: the agent's gRPC context is cancelled (its container is gone).
    cancelled: bool,
    /// istiod's own serving certificate (`PILOT_CERT_PROVIDER=k8s.io/...`): `pod` is the
    /// starting replica itself.
    serving: bool,
}

/// Who waits for an API call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    /// An istiod flow's call.
    Flow { flow: FlowRef, call: Option<Call> },
    /// A signer's request (`job` None: an event, fire and forget).
    Signer { job: Option<JobRef>, call: ApiCall },
    /// A starting istiod replica's informer LIST ([`super::startup`]).
    Informer { pod: PodRef, informer: u32 },
    /// An istio-csr flow's call.
    IstioCsr {
        flow: FlowRef,
        call: istiocsr::CsrCall,
    },
    /// istio-csr's deferred CertificateRequest Delete (a goroutine nobody waits for).
    IstioCsrDelete { key: ObjKey },
    /// cert-manager's approver's `UpdateStatus` (Approved) of a CR it read at `version`.
    Approver { key: ObjKey, version: u64 },
}

#[derive(Debug, Clone, Copy)]
struct PendingCall {
    gen: u32,
    live: bool,
    owner: Owner,
    req: ApiRequest,
    /// Retries so far (client-go), flows only.
    retries: u32,
    /// The replica whose client sends it (flows).
    replica: u32,
}

/// Counters of the certificate path.
#[derive(Debug, Clone, Default)]
pub struct CertStats {
    /// CSRs left behind (failed Delete, istiod terminated mid-flow, or never deleted).
    pub csr_orphaned: u64,
    /// Signings nobody waited for any more.
    pub csr_wasted_signings: u64,
    /// Signer reconciles that found the object gone.
    pub csr_skipped_gone: u64,
    /// Objects the signer marked Failed.
    pub csr_marked_failed: u64,
    /// CRs cert-manager's approver approved (istio-csr clusters).
    pub cr_approvals: u64,
    /// Flows that ended without a certificate.
    pub flows_failed: u64,
    /// API calls that failed after client-go's retries.
    pub api_errors: u64,
    /// Certificates renewed by istio-agent's rotation (a new certificate delivered to a
    /// ready pod).
    pub cert_rotations: u64,
    /// Rotations whose old certificate expired before the new one arrived.
    pub cert_expired: u64,
    /// `IssueCertificate` calls the cluster's aws-privateca-issuer sent to AWS Private
    /// CA (SDK retries included).
    pub pca_issue_calls: u64,
}

/// A cluster's certificate path. See the module docs.
pub struct CertPath {
    api: ApiServer,
    csrs: ObjectStore,
    flows: Vec<Flow>,
    free_flows: Vec<u32>,
    calls: Vec<PendingCall>,
    free_calls: Vec<u32>,
    signer: Option<Signer>,
    istiod_client: ClientId,
    signer_client: ClientId,
    informer_delay: SimTime,
    api_out: Vec<ApiOutcome>,
    stats: CertStats,
    /// Rejected at the last sample (for the per-interval series).
    rejected_at_sample: u64,
    /// istio-csr replicas (`ca_mode = "istio-csr"`; empty otherwise).
    csr_servers: Vec<IstioCsrServer>,
    /// istio-csr: `--preserve-certificate-requests`.
    preserve_crs: bool,
    /// istio-csr clusters: cert-manager's approver of the CRs.
    approver: Option<istiocsr::Approver>,
    /// aws-privateca-issuer: what `IssueCertificate` returned per CR, until its
    /// annotation write lands.
    pca_issued: std::collections::BTreeMap<ObjKey, crate::control::issuer::PcaCertificate>,
    /// istio-agent rotation, per pod slot.
    rotating: Vec<rotation::Rot>,
    /// The rotations waiting, with the cluster's one timer.
    timers: rotation::RotationTimers,
}

impl CertPath {
    /// The path of cluster `index` with its `spec`; `rng` is the signer's stream.
    pub fn new(index: u32, spec: &ClusterSpec, sc: &Scenario, rng: RngStream) -> CertPath {
        let mut api = ApiServer::new(index, spec.apiserver);
        let istiod_client =
            api.register_client(&Identity::service_account("istio-system", "istiod"));
        let (signer, signer_client) = match (spec.istiod.ca_mode, spec.ca) {
            (CaMode::IstioCsr, Some(_)) => {
                let config = SignerConfig::AwsPcaIssuer(AwsPcaIssuerConfig {
                    workers: spec.signer.workers,
                    ..AwsPcaIssuerConfig::default()
                });
                let id = api.register_client(&Identity::service_account(
                    "cert-manager",
                    "aws-privateca-issuer",
                ));
                (Some(Signer::new(index, config, rng)), id)
            }
            (CaMode::KubernetesRa, Some(ca)) => {
                let config = signer_config(spec, &sc.cas[ca].kind);
                let identity = match spec.signer.kind {
                    SignerKind::CertManager => {
                        Identity::service_account("cert-manager", "cert-manager")
                    }
                    _ => Identity::service_account("signer-system", "signer"),
                };
                let id = api.register_client(&identity);
                (Some(Signer::new(index, config, rng)), id)
            }
            _ => (None, istiod_client),
        };
        let csr_servers = istiocsr::servers(spec, &mut api);
        let approver = istiocsr::approver(spec, &mut api);
        CertPath {
            api,
            csrs: ObjectStore::default(),
            flows: Vec::new(),
            free_flows: Vec::new(),
            calls: Vec::new(),
            free_calls: Vec::new(),
            signer,
            istiod_client,
            signer_client,
            informer_delay: spec.signer.informer_delay,
            api_out: Vec::new(),
            stats: CertStats::default(),
            rejected_at_sample: 0,
            csr_servers,
            preserve_crs: spec.signer.preserve_certificate_requests,
            approver,
            pca_issued: std::collections::BTreeMap::new(),
            rotating: Vec::new(),
            timers: rotation::RotationTimers::default(),
        }
    }

    /// The apiserver, to submit to (cert-manager's Certificate controllers).
    pub(crate) fn api_mut(&mut self) -> &mut ApiServer {
        &mut self.api
    }

    /// The apiserver.
    pub fn api(&self) -> &ApiServer {
        &self.api
    }

    /// The CSR objects.
    pub fn csrs(&self) -> &ObjectStore {
        &self.csrs
    }

    /// The CSR objects, to change (csrcleaner, interventions).
    pub fn csrs_mut(&mut self) -> &mut ObjectStore {
        &mut self.csrs
    }

    /// istio-csr replicas (0 unless `ca_mode = "istio-csr"`).
    pub fn istio_csr_replicas(&self) -> usize {
        self.csr_servers.len()
    }

    /// The signer, if the cluster runs one.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The counters.
    pub fn stats(&self) -> &CertStats {
        &self.stats
    }

    /// One `IssueCertificate` call to AWS Private CA, by whichever signer sends it.
    pub fn count_pca_issue(&mut self) {
        self.stats.pca_issue_calls += 1;
    }

    /// Rejections since the last call.
    pub fn take_rejected_interval(&mut self) -> u64 {
        let total = self.api.rejected_total();
        let d = total - self.rejected_at_sample;
        self.rejected_at_sample = total;
        d
    }

    /// Flows in progress.
    pub fn flows_in_flight(&self) -> usize {
        self.flows.len() - self.free_flows.len()
    }

    fn alloc_flow(&mut self, pod: PodRef, replica: u32, chiron: Option<ChironFlow>) -> FlowRef {
        let slot = match self.free_flows.pop() {
            Some(s) => s,
            None => {
                self.flows.push(Flow {
                    gen: 0,
                    live: false,
                    pod,
                    replica,
                    chiron: None,
                    csr: None,
                    step: 0,
                    awaiting: false,
                    authenticated: false,
                    icsr: None,
                    cancelled: false,
                    serving: false,
                });
                (self.flows.len() - 1) as u32
            }
        };
        let fl = &mut self.flows[slot as usize];
        fl.gen = fl.gen.wrapping_add(1);
        fl.live = true;
        fl.pod = pod;
        fl.replica = replica;
        fl.chiron = chiron;
        fl.csr = None;
        fl.step = 0;
        fl.awaiting = false;
        fl.authenticated = false;
        fl.icsr = None;
        fl.cancelled = false;
        fl.serving = false;
        FlowRef { slot, gen: fl.gen }
    }

    fn flow_mut(&mut self, r: FlowRef) -> Option<&mut Flow> {
        self.flows
            .get_mut(r.slot as usize)
            .filter(|f| f.live && f.gen == r.gen)
    }

    fn free_flow(&mut self, r: FlowRef) {
        if let Some(f) = self.flow_mut(r) {
            f.live = false;
            f.chiron = None;
            f.icsr = None;
            self.free_flows.push(r.slot);
        }
    }

    fn alloc_call(&mut self, owner: Owner, req: ApiRequest, replica: u32) -> u64 {
        let slot = match self.free_calls.pop() {
            Some(s) => s,
            None => {
                self.calls.push(PendingCall {
                    gen: 0,
                    live: false,
                    owner,
                    req,
                    retries: 0,
                    replica,
                });
                (self.calls.len() - 1) as u32
            }
        };
        let c = &mut self.calls[slot as usize];
        c.gen = c.gen.wrapping_add(1);
        c.live = true;
        c.owner = owner;
        c.req = req;
        c.retries = 0;
        c.replica = replica;
        ((c.gen as u64) << 32) | slot as u64
    }

    /// Prefetches the pending call `tag` names (a hint; see [`crate::engine::prefetch`]).
    #[inline]
    pub(crate) fn prefetch_call(&self, tag: u64) {
        if let Some(c) = self.calls.get(tag as u32 as usize) {
            crate::engine::prefetch(c);
        }
    }

    /// The pod slot of the next rotation due (to prefetch), with its rotation state
    /// prefetched.
    #[inline]
    pub(crate) fn prefetch_rotation(&self) -> Option<u32> {
        let slot = self.timers.first_slot()?;
        if let Some(r) = self.rotating.get(slot as usize) {
            crate::engine::prefetch(r);
        }
        Some(slot)
    }

    /// Prefetches where the earliest rotation is kept (its slot is read from there).
    #[inline]
    pub(crate) fn prefetch_rotation_head(&self) {
        self.timers.prefetch_head();
    }

    fn call(&self, tag: u64) -> Option<PendingCall> {
        self.calls
            .get(tag as u32 as usize)
            .filter(|c| c.live && c.gen == (tag >> 32) as u32)
            .copied()
    }

    fn free_call(&mut self, tag: u64) {
        let slot = tag as u32 as usize;
        if let Some(c) = self.calls.get_mut(slot) {
            if c.live && c.gen == (tag >> 32) as u32 {
                c.live = false;
                self.free_calls.push(slot as u32);
            }
        }
    }
}

/// The signer controller's configuration from the cluster's `[signer]` and its CA.
fn signer_config(spec: &ClusterSpec, ca: &IssuerKind) -> SignerConfig {
    let s = &spec.signer;
    match s.kind {
        SignerKind::CertManager => SignerConfig::CertManager(CertManagerConfig {
            workers: s.workers,
            qps: s.client_qps,
            burst: s.client_burst,
            issuer: match ca {
                IssuerKind::Vault(_) => BuiltinIssuer::Vault,
                _ => BuiltinIssuer::Ca,
            },
            ..CertManagerConfig::default()
        }),
        _ => SignerConfig::ControllerRuntime(ControllerRuntimeConfig {
            workers: s.workers,
            qps: s.client_qps,
            burst: s.client_burst,
            mark_failed_on_issuer_error: s.mark_failed_on_issuer_error,
        }),
    }
}

/// The verb, resource and request of a chiron call.
fn flow_request(client: ClientId, call: Option<Call>) -> ApiRequest {
    let verb = match call {
        None => Verb::Watch,
        Some(Call::TokenReview | Call::Create | Call::CreateV1beta1) => Verb::Create,
        Some(Call::Approve) => Verb::Update,
        Some(Call::List) => Verb::List,
        Some(Call::Get) => Verb::Get,
        Some(Call::Delete) => Verb::Delete,
    };
    let req = ApiRequest::new(client, verb, Resource::Other);
    match call {
        None | Some(Call::List) => req.by_name(),
        _ => req,
    }
}

fn signer_request(client: ClientId, call: &ApiCall) -> ApiRequest {
    let req = ApiRequest::new(client, call.verb, call.resource);
    if call.namespaced {
        req.in_namespace(1)
    } else {
        req
    }
}

// ----- the agent's request ------------------------------------------------------------

/// Where an agent's `CreateCertificate` goes (its `CA_ADDR`), drawn from the cluster's
/// `istiod-pick` stream: one of istio-csr's replicas behind its Service (always up
/// here), or a ready istiod replica (its pod slot; `None`: none is ready). Counted in
/// `csr_requests`, or in `csr_no_istiod` when nothing answers.
#[inline]
pub fn route_ca_request(f: &mut Fleet, cluster: u32) -> Option<u32> {
    let istio_csr = f.spec(cluster).istiod.ca_mode == CaMode::IstioCsr;
    let c = f.cluster_mut(cluster);
    let replica = if istio_csr {
        let n = c.cert().istio_csr_replicas();
        Some(c.istiod_mut().pick_endpoint(n) as u32)
    } else {
        c.istiod_mut().pick().map(|r| r.slot())
    };
    let counters = c.counters_mut();
    match replica {
        Some(_) => counters.csr_requests += 1,
        None => counters.csr_no_istiod += 1,
    }
    replica
}

/// An agent's `CreateCertificate` reached replica `replica` (pod slot): start its flow.
pub fn start_flow(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    replica: u32,
) {
    let spec = f.spec(cluster);
    if spec.istiod.ca_mode == CaMode::IstioCsr {
        istiocsr::start(f, ctx, cluster, pod, replica);
        return;
    }
    let chiron = (spec.istiod.ca_mode == CaMode::KubernetesRa)
        .then(|| ChironFlow::new(spec.istiod.version.chiron_group()));
    let cp = f.cluster_mut(cluster).cert_mut();
    let flow = cp.alloc_flow(pod, replica, chiron);
    if cp.flows[flow.slot as usize].chiron.is_some() {
        drive(f, ctx, cluster, flow, Input::Start);
    } else {
        // The built-in CA: authenticate (TokenReview), then sign in process.
        issue_flow_call(f, ctx, cluster, flow, Some(Call::TokenReview));
    }
}

/// A starting istiod replica in `pod` asks for its own serving certificate
/// (`PILOT_CERT_PROVIDER=k8s.io/...`: certcontroller.go's `initDNSCerts` calls chiron's
/// `GenKeyCertK8sCA`, the same `SignCSRK8s` flow as a workload's, on the replica's own
/// client), before it serves anything.
pub fn start_serving_cert_flow(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let group = f.spec(cluster).istiod.version.chiron_group();
    let cp = f.cluster_mut(cluster).cert_mut();
    let flow = cp.alloc_flow(pod, pod.slot, Some(ChironFlow::new(group)));
    cp.flows[flow.slot as usize].serving = true;
    drive(f, ctx, cluster, flow, Input::Start);
}

/// Runs the flow's state machine from `input` until it waits.
fn drive(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, flow: FlowRef, mut input: Input) {
    let now = ctx.now();
    let delete_on_end = f.spec(cluster).istiod.delete_csr_on_give_up;
    loop {
        let cp = f.cluster_mut(cluster).cert_mut();
        let CertPath {
            flows,
            free_flows,
            csrs,
            stats,
            ..
        } = cp;
        let Some(fl) = flows
            .get_mut(flow.slot as usize)
            .filter(|x| x.live && x.gen == flow.gen)
        else {
            return;
        };
        let Some(ch) = fl.chiron.as_mut() else { return };
        match ch.next(input) {
            Action::Call(Call::Delete) if !delete_on_end => {
                // Assumption: istiod never deletes its CSR.
                input = Input::Result(CallResult::Ok);
                if let Some(key) = fl.csr.take() {
                    csrs.annotate(key, |o| {
                        o.owned = false;
                        o.waiter = None;
                    });
                    stats.csr_orphaned += 1;
                }
            }
            Action::Call(call) => {
                issue_flow_call(f, ctx, cluster, flow, Some(call));
                return;
            }
            Action::OpenWatch => {
                issue_flow_call(f, ctx, cluster, flow, None);
                return;
            }
            Action::AwaitWatch { timeout } => {
                let signed = fl
                    .csr
                    .and_then(|k| csrs.get(k))
                    .is_some_and(|o| o.has_certificate);
                if signed {
                    input = Input::WatchEnded { signed: true };
                    continue;
                }
                fl.step += 1;
                fl.awaiting = true;
                let step = fl.step;
                if let Some(k) = fl.csr {
                    csrs.annotate(k, |o| o.waiter = Some(flow));
                }
                ctx.schedule_at(
                    now + timeout,
                    Event::FlowWake {
                        cluster,
                        flow,
                        step,
                    },
                );
                return;
            }
            Action::Sleep(d) => {
                fl.step += 1;
                let step = fl.step;
                ctx.schedule_at(
                    now + d,
                    Event::FlowWake {
                        cluster,
                        flow,
                        step,
                    },
                );
                return;
            }
            Action::Done(result) => {
                let left = ch.csr_left_behind();
                if let Some(k) = fl.csr {
                    if left && csrs.get(k).is_some() {
                        stats.csr_orphaned += 1;
                        csrs.annotate(k, |o| {
                            o.owned = false;
                            o.waiter = None;
                        });
                    }
                }
                let (pod, serving, csr) = (fl.pod, fl.serving, fl.csr);
                fl.live = false;
                fl.chiron = None;
                free_flows.push(flow.slot);
                if serving {
                    super::startup::on_serving_cert(f, ctx, cluster, pod, result.is_ok(), csr);
                } else {
                    finish_flow(f, ctx, cluster, pod, result.is_ok());
                }
                return;
            }
        }
    }
}

/// The agent gets its answer.
fn finish_flow(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef, ok: bool) {
    if !ok {
        f.cluster_mut(cluster).cert_mut().stats.flows_failed += 1;
    }
    super::certs::on_flow_done(f, ctx, cluster, pod, ok);
}

/// A sleep or a watch timeout ended, or the watch saw the certificate.
pub fn on_flow_wake(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    flow: FlowRef,
    step: u32,
) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(fl) = cp.flow_mut(flow) else { return };
    if fl.step != step {
        return;
    }
    if fl.icsr.is_some() {
        istiocsr::on_wake(f, ctx, cluster, flow);
        return;
    }
    fl.step += 1;
    let input = if fl.awaiting {
        fl.awaiting = false;
        let signed = match fl.csr {
            Some(k) => {
                cp.csrs.annotate(k, |o| o.waiter = None);
                cp.csrs.get(k).is_some_and(|o| o.has_certificate)
            }
            None => false,
        };
        Input::WatchEnded { signed }
    } else {
        Input::Woke
    };
    drive(f, ctx, cluster, flow, input);
}

/// Takes the token for a flow's call (none for the watch) and sends it.
fn issue_flow_call(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    flow: FlowRef,
    call: Option<Call>,
) {
    let now = ctx.now();
    let c = f.cluster_mut(cluster);
    let replica = c.cert_mut().flows[flow.slot as usize].replica;
    let Some(send_at) = c
        .istiod_mut()
        .client_mut(replica)
        .map(|cl| cl.acquire(now, call.is_none(), None).expect("no deadline"))
    else {
        return; // the replica is gone: its flows were aborted
    };
    let cp = c.cert_mut();
    let req = flow_request(cp.istiod_client, call);
    let tag = cp.alloc_call(Owner::Flow { flow, call }, req, replica);
    dispatch(f, ctx, cluster, tag, send_at);
}

/// A pending call's send time came (`retry`: the end of a Retry-After sleep, a new token
/// first).
pub fn on_api_send(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, tag: u64, retry: bool) {
    let now = ctx.now();
    let c = f.cluster_mut(cluster);
    let Some(pc) = c.cert_mut().call(tag) else {
        return;
    };
    if !retry {
        return send(f, ctx, cluster, tag);
    }
    // A retried call first takes a new token from its client's limiter (the one it was
    // sent through); `None`: its client is gone (replica terminated).
    let token = match pc.owner {
        Owner::Signer { .. } => Some(now),
        _ => sender(c, &pc).map(|r| r.acquire_retry(now, None).expect("no deadline")),
    };
    let Some(at) = token else {
        c.cert_mut().free_call(tag);
        return;
    };
    dispatch(f, ctx, cluster, tag, at);
}

/// Sends pending call `tag` at `send_at` (its token's time): now if that has come, else
/// at an `ApiSend` then.
#[inline]
fn dispatch(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, tag: u64, send_at: SimTime) {
    if send_at <= ctx.now() {
        send(f, ctx, cluster, tag);
    } else {
        ctx.schedule_at(
            send_at,
            Event::ApiSend {
                cluster,
                tag,
                retry: false,
            },
        );
    }
}

/// Submits a pending call to the apiserver now.
fn send(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, tag: u64) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(pc) = cp.call(tag) else { return };
    let mut out = std::mem::take(&mut cp.api_out);
    let adm = cp.api.submit(&pc.req, tag, ctx, &mut out);
    // A posted event nobody waits for changes no object: no reply event (its seat is
    // the apiserver's to release).
    let fire_and_forget = matches!(
        pc.owner,
        Owner::Signer {
            job: None,
            call: ApiCall {
                op: ApiOp::Event,
                ..
            }
        }
    );
    match adm {
        Admission::Admitted { .. } if fire_and_forget => cp.free_call(tag),
        Admission::Admitted { done_at } => {
            ctx.schedule_at(done_at, Event::ApiDone { cluster, tag })
        }
        Admission::Queued => {}
        Admission::Rejected { retry_after_s, .. } => out.push(ApiOutcome::Rejected {
            tag,
            retry_after_s,
            reason: crate::control::apiserver::RejectReason::QueueFull,
        }),
    }
    route_api_outcomes(f, ctx, cluster, &mut out);
    f.cluster_mut(cluster).cert_mut().api_out = out;
}

/// The apiserver's wake.
pub fn on_api_event(f: &mut Fleet, ctx: &mut Context<Event>, ev: ApiServerEvent) {
    let cluster = ev.apiserver;
    let cp = f.cluster_mut(cluster).cert_mut();
    let mut out = std::mem::take(&mut cp.api_out);
    cp.api.handle(ev, ctx, &mut out);
    route_api_outcomes(f, ctx, cluster, &mut out);
    f.cluster_mut(cluster).cert_mut().api_out = out;
}

pub(crate) fn route_api_outcomes(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    out: &mut Vec<ApiOutcome>,
) {
    for o in out.drain(..) {
        match o {
            ApiOutcome::Admitted { tag, done_at } => {
                ctx.schedule_at(done_at, Event::ApiDone { cluster, tag })
            }
            ApiOutcome::Rejected {
                tag, retry_after_s, ..
            } => on_rejected(f, ctx, cluster, tag, retry_after_s),
        }
    }
}

/// A 429 for a pending call: client-go's retry rule.
fn on_rejected(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    tag: u64,
    retry_after_s: u32,
) {
    if super::certificates::owns(tag) {
        return super::certificates::on_rejected(f, ctx, cluster, tag, retry_after_s);
    }
    let now = ctx.now();
    let c = f.cluster_mut(cluster);
    let Some(pc) = c.cert_mut().call(tag) else {
        return;
    };
    if let Owner::Signer { job, .. } = pc.owner {
        c.cert_mut().free_call(tag);
        if let Some(job) = job {
            signer_api_reply(
                f,
                ctx,
                cluster,
                job,
                ApiReply::TooManyRequests { retry_after_s },
            );
        }
        return;
    }
    let decision = sender(c, &pc).map_or(RetryDecision::Return, |r| {
        r.on_reply(now, pc.retries, Reply::TooManyRequests { retry_after_s })
    });
    let cp = c.cert_mut();
    if let RetryDecision::RetryAt { at, retry } = decision {
        cp.calls[tag as u32 as usize].retries = retry;
        ctx.schedule_at(
            at,
            Event::ApiSend {
                cluster,
                tag,
                retry: true,
            },
        );
        return;
    }
    cp.free_call(tag);
    cp.stats.api_errors += 1;
    match pc.owner {
        Owner::Flow { flow, call } => flow_reply(f, ctx, cluster, flow, call, CallResult::Error),
        Owner::Informer { pod, informer } => {
            super::startup::on_list_failed(f, ctx, cluster, pod, informer)
        }
        Owner::IstioCsr { .. } | Owner::IstioCsrDelete { .. } => {
            istiocsr::gave_up(f, ctx, cluster, pc)
        }
        // The approver's requeue after a give-up is not modelled (istiocsr module docs).
        Owner::Signer { .. } | Owner::Approver { .. } => {}
    }
}

/// The client a pending call was sent through, whose limiter and retry rule it follows;
/// `None` when that client is gone (its istiod replica terminated) or the call is a
/// signer's (the signer keeps its own).
#[inline]
fn sender<'a>(c: &'a mut Cluster, pc: &PendingCall) -> Option<&'a mut RestClient> {
    match pc.owner {
        // Ready or starting: a starting replica's own serving-certificate flow too.
        Owner::Flow { .. } => c.istiod_mut().client_mut(pc.replica),
        Owner::Informer { pod, .. } => c
            .istiod_mut()
            .starting_mut(pod.slot, pod.gen)
            .map(|r| &mut r.client),
        Owner::IstioCsr { .. } | Owner::IstioCsrDelete { .. } => {
            Some(istiocsr::client_mut(c.cert_mut(), pc))
        }
        Owner::Approver { .. } => istiocsr::approver_client(c.cert_mut()),
        Owner::Signer { .. } => None,
    }
}

/// A call's reply leaves the apiserver: its effect lands now.
pub fn on_api_done(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, tag: u64) {
    if super::certificates::owns(tag) {
        return super::certificates::on_api_done(f, ctx, cluster, tag);
    }
    let now = ctx.now();
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(pc) = cp.call(tag) else { return };
    cp.free_call(tag);
    match pc.owner {
        Owner::Flow { flow, call } => {
            let Some(fl) = cp.flow_mut(flow) else { return };
            let key = fl.csr;
            let result = match call {
                None | Some(Call::TokenReview) => CallResult::Ok,
                Some(Call::Create | Call::CreateV1beta1) => {
                    let k = cp.csrs.create(now, true);
                    cp.flows[flow.slot as usize].csr = Some(k);
                    notify(cp, ctx, cluster, k);
                    CallResult::Ok
                }
                Some(Call::Approve) => match key {
                    Some(k) if cp.csrs.update(k, now, |o| o.approved = true) => {
                        notify(cp, ctx, cluster, k);
                        CallResult::Ok
                    }
                    _ => CallResult::NotFound,
                },
                Some(Call::List | Call::Get) => match key.and_then(|k| cp.csrs.get(k)) {
                    Some(o) => chiron::read_result(CsrState {
                        has_certificate: o.has_certificate,
                        failed: o.failed,
                        denied: o.denied,
                    }),
                    None => CallResult::NotFound,
                },
                Some(Call::Delete) => match key {
                    Some(k) if cp.csrs.delete(k).is_some() => {
                        notify(cp, ctx, cluster, k);
                        CallResult::Ok
                    }
                    _ => CallResult::NotFound,
                },
            };
            flow_reply(f, ctx, cluster, flow, call, result);
        }
        Owner::Informer { pod, informer } => {
            super::startup::on_listed(f, ctx, cluster, pod, informer)
        }
        Owner::Signer { job, call } => {
            let reply = apply_signer_write(f, ctx, cluster, &call);
            if let Some(job) = job {
                signer_api_reply(f, ctx, cluster, job, reply);
            }
        }
        Owner::IstioCsr { flow, call } => istiocsr::on_done(f, ctx, cluster, flow, call),
        Owner::Approver { key, version } => istiocsr::on_approved(f, ctx, cluster, key, version),
        Owner::IstioCsrDelete { key } => {
            let cp = f.cluster_mut(cluster).cert_mut();
            if cp.csrs.delete(key).is_some() {
                cp.pca_issued.remove(&key);
                notify(cp, ctx, cluster, key);
            }
        }
    }
}

fn flow_reply(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    flow: FlowRef,
    call: Option<Call>,
    result: CallResult,
) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let Some(fl) = cp.flow_mut(flow) else { return };
    if fl.chiron.is_some() {
        drive(f, ctx, cluster, flow, Input::Result(result));
        return;
    }
    // The built-in CA: signed in process once authenticated.
    debug_assert_eq!(call, Some(Call::TokenReview));
    fl.authenticated = result == CallResult::Ok;
    let (pod, ok) = (fl.pod, fl.authenticated);
    cp.free_flow(flow);
    finish_flow(f, ctx, cluster, pod, ok);
}

/// Applies a signer's write to the object store; the reply the apiserver gives.
fn apply_signer_write(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    call: &ApiCall,
) -> ApiReply {
    let now = ctx.now();
    let cp = f.cluster_mut(cluster).cert_mut();
    let key = call.object;
    let exists = cp.csrs.get(key).map(|o| o.version);
    let conflict = |v: u64| call.base_version.is_some_and(|b| b != v);
    let reply = match call.op {
        ApiOp::WriteCertificate
        | ApiOp::MarkFailed
        | ApiOp::MarkPending
        | ApiOp::SetArnAnnotation => match exists {
            None => ApiReply::NotFound,
            Some(v) if conflict(v) => ApiReply::Conflict,
            Some(_) => {
                match call.op {
                    ApiOp::WriteCertificate => {
                        cp.csrs.update(key, now, |o| o.has_certificate = true);
                        let o = cp.csrs.get(key).expect("live");
                        if !o.owned {
                            cp.stats.csr_wasted_signings += 1;
                        }
                        if let Some(w) = o.waiter {
                            let step = cp.flows[w.slot as usize].step;
                            ctx.schedule_at(
                                now,
                                Event::FlowWake {
                                    cluster,
                                    flow: w,
                                    step,
                                },
                            );
                        }
                    }
                    ApiOp::MarkFailed => {
                        cp.csrs.update(key, now, |o| o.failed = true);
                        // istio-csr's watch sees the Failed condition.
                        istiocsr::wake_waiter(cp, ctx, cluster, key);
                    }
                    ApiOp::SetArnAnnotation => {
                        let arn = cp.pca_issued.get(&key).copied();
                        cp.csrs.update(key, now, |o| o.arn = arn);
                    }
                    _ => {}
                }
                notify(cp, ctx, cluster, key);
                ApiReply::Ok
            }
        },
        _ => ApiReply::Ok,
    };
    if call.op == ApiOp::MarkFailed && reply == ApiReply::Ok {
        if let Some(ca) = f.spec(cluster).ca {
            f.sync_failed_objects(ctx, ca);
        }
    }
    reply
}

/// A write to object `key`: its informer delivery to the signer (coalesced).
fn notify(cp: &mut CertPath, ctx: &mut Context<Event>, cluster: u32, key: ObjKey) {
    if cp.signer.is_none() {
        return;
    }
    if cp.csrs.mark_informer_pending(key) {
        ctx.schedule_in(cp.informer_delay, Event::Informer { cluster, key });
    }
}

/// The signer's informer delivers object `key`'s state now.
pub fn on_informer(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, key: ObjKey) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let ev = match cp.csrs.take_informer_delivery(key) {
        Some(view) => InformerEvent::Upsert { key, view },
        None => InformerEvent::Delete { key },
    };
    let mut out = Vec::new();
    // cert-manager's approver watches the same CRs (istio-csr clusters).
    let approve = match (&ev, cp.approver.is_some()) {
        (InformerEvent::Upsert { view, .. }, true) => Some(*view),
        _ => None,
    };
    if let Some(s) = cp.signer.as_mut() {
        s.informer(ev, ctx, &mut out);
    }
    route_signer_outputs(f, ctx, cluster, out);
    if let Some(view) = approve {
        istiocsr::approve(f, ctx, cluster, key, &view);
    }
}

/// The signer's own timer.
pub fn on_signer_event(f: &mut Fleet, ctx: &mut Context<Event>, ev: SignerEvent) {
    let cluster = ev.signer;
    drive_signer(f, ctx, cluster, |s, ctx, out| s.handle(ev.kind, ctx, out));
}

fn signer_api_reply(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    job: JobRef,
    reply: ApiReply,
) {
    drive_signer(f, ctx, cluster, |s, ctx, out| {
        s.api_reply(job, reply, ctx, out)
    });
}

/// The issuer's answer to a signer's call.
pub fn on_issuer_done(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    job: JobRef,
    reply: IssuerReply,
) {
    if job.worker == super::certificates::SIGN_WORKER {
        return super::certificates::on_signed(f, ctx, cluster, job.gen, reply);
    }
    drive_signer(f, ctx, cluster, |s, ctx, out| {
        s.issuer_reply(job, reply, ctx, out)
    });
}

/// Gives the cluster's signer one input, then routes what it asked for.
fn drive_signer(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    step: impl FnOnce(&mut Signer, &mut Context<Event>, &mut Vec<SignerOutput>),
) {
    let mut out = Vec::new();
    if let Some(s) = f.cluster_mut(cluster).cert_mut().signer.as_mut() {
        step(s, ctx, &mut out);
    }
    route_signer_outputs(f, ctx, cluster, out);
}

fn route_signer_outputs(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    out: Vec<SignerOutput>,
) {
    let now = ctx.now();
    for o in out {
        match o {
            SignerOutput::Api { job, call, send_at } => {
                let cp = f.cluster_mut(cluster).cert_mut();
                let req = signer_request(cp.signer_client, &call);
                let tag = cp.alloc_call(Owner::Signer { job, call }, req, u32::MAX);
                dispatch(f, ctx, cluster, tag, send_at);
            }
            SignerOutput::Issuer { job, call } => match call {
                IssuerCall::Sign { key } => f.issuer_sign(ctx, cluster, job, key),
                IssuerCall::PcaIssue { key } => {
                    f.cluster_mut(cluster).cert_mut().count_pca_issue();
                    if let Some(cert) = f.pca_issue(ctx, cluster, job, key) {
                        let cp = f.cluster_mut(cluster).cert_mut();
                        if cp.csrs.get(key).is_some() {
                            cp.pca_issued.insert(key, cert);
                        }
                    }
                }
                IssuerCall::PcaGet { cert, .. } => f.pca_get(ctx, cluster, job, cert),
            },
            SignerOutput::SkippedGone { .. } => {
                f.cluster_mut(cluster).cert_mut().stats.csr_skipped_gone += 1
            }
            SignerOutput::MarkedFailed { .. } => {
                f.cluster_mut(cluster).cert_mut().stats.csr_marked_failed += 1
            }
            SignerOutput::Signed { wasted: true, .. } => {
                f.cluster_mut(cluster).cert_mut().stats.csr_wasted_signings += 1
            }
            SignerOutput::Event {
                key,
                warning,
                reason,
                message,
            } => super::journal::csr_event(f, now, cluster, key, warning, reason, message),
            SignerOutput::Signed { wasted: false, .. } | SignerOutput::LeaderElectionLost => {}
        }
    }
}

/// Starts the cluster's signer (its lease renewals).
pub fn start_signer(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    if let Some(s) = f.cluster_mut(cluster).cert_mut().signer.as_mut() {
        s.start(ctx);
    }
}

/// istiod replica `replica` (pod slot) is gone: its flows end without a Delete; their
/// CSRs stay behind; their agents see `Unavailable`.
pub fn abort_replica_flows(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, replica: u32) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let mut pods_hit = Vec::new();
    for slot in 0..cp.flows.len() {
        let fl = &cp.flows[slot];
        // istio-csr flows run in istio-csr, not in an istiod replica.
        if !fl.live || fl.replica != replica || fl.icsr.is_some() {
            continue;
        }
        let r = FlowRef {
            slot: slot as u32,
            gen: fl.gen,
        };
        let live_csr = fl.chiron.as_ref().is_some_and(|c| c.csr_live());
        if let (true, Some(k)) = (live_csr, fl.csr) {
            if cp.csrs.get(k).is_some() {
                cp.stats.csr_orphaned += 1;
                cp.csrs.annotate(k, |o| {
                    o.owned = false;
                    o.waiter = None;
                });
            }
        }
        // The replica's own serving-certificate flow dies with it: nobody to answer.
        if !fl.serving {
            pods_hit.push(fl.pod);
        }
        cp.free_flow(r);
    }
    for pod in pods_hit {
        finish_flow(f, ctx, cluster, pod, false);
    }
}

/// Whether the pod is the agent's and still waits for its certificate.
pub fn agent_waiting(f: &Fleet, cluster: u32, pod: PodRef) -> bool {
    let s = f.cluster(cluster).objects();
    s.is_current(pod) && s.pods[pod.slot as usize].phase == PodPhase::WaitingCert
}

/// Deletes object `key` outside istiod's flows (csrcleaner, an intervention): its
/// informer hears of it.
pub fn delete_object(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, key: ObjKey) {
    let cp = f.cluster_mut(cluster).cert_mut();
    let waiter = cp.csrs.get(key).and_then(|o| o.waiter);
    if cp.csrs.delete(key).is_some() {
        cp.pca_issued.remove(&key);
        notify(cp, ctx, cluster, key);
        // istio-csr's watch sees the Deleted event ("unexpectedly deleted").
        if let Some(w) = waiter {
            istiocsr::wake_flow(cp, ctx, cluster, w);
        }
    }
}

/// A starting istiod replica's informer `informer` sends its LIST (`list`): a token from
/// the replica's limiter (no deadline), then the apiserver (`resourceVersion=0`: from the
/// watch cache, every object returned).
pub fn issue_informer_list(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    informer: u32,
    list: crate::control::informers::InformerList,
) {
    let now = ctx.now();
    let c = f.cluster_mut(cluster);
    let Some(send_at) = c
        .istiod_mut()
        .starting_mut(pod.slot, pod.gen)
        .map(|r| r.client.acquire(now, false, None).expect("no deadline"))
    else {
        return;
    };
    let cp = c.cert_mut();
    let req = ApiRequest::new(cp.istiod_client, Verb::List, list.resource)
        .listing(list.objects, list.objects);
    let tag = cp.alloc_call(Owner::Informer { pod, informer }, req, pod.slot);
    dispatch(f, ctx, cluster, tag, send_at);
}

/// The fleet the tests of istio-csr and of rotation run: one cluster on istiod `version`
/// with istio-csr in front of AWS PCA, `pods` injected pods on 4 nodes that are not
/// upgraded, for `horizon`; `signer` adds keys to `[cluster.c.signer]`, `tail` tables.
#[cfg(test)]
fn istio_csr_fleet(version: &str, horizon: &str, pods: u32, signer: &str, tail: &str) -> Scenario {
    let text = format!(
        r#"
[scenario]
name = "t"
horizon = "{horizon}"

[ca.pca]
kind = "aws-pca"
account = "a"

[cluster.c]
ca = "pca"

[cluster.c.istiod]
version = "{version}"
ca_mode = "istio-csr"

[cluster.c.signer]
kind = "istio-csr"
{signer}

[cluster.c.node_group.apps]
nodes = 4
max_pods = 58
upgrade = false

[cluster.c.workload.app]
replicas = {pods}
{tail}"#
    );
    crate::scenario::load_str("t.toml", &text, &[])
        .unwrap()
        .scenario
}
