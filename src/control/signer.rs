//! The controllers that sign what istiod (or istio-csr) asks for: cert-manager's
//! CertificateSigningRequest controller, a controller-runtime CSR signer (the
//! `cert-manager/signer-ca` pattern), and aws-privateca-issuer's CertificateRequest
//! controller behind istio-csr ([`IstioCsrFlow`]).
//!
//! # Shape
//! A [`Signer`] is a controller process: an informer's lister of the objects it
//! watches, a client-go workqueue with dedup and a rate limiter, `workers` goroutines,
//! and REST clients. The owner feeds it **informer events** ([`InformerEvent`], at the
//! time the informer would deliver them) and the **replies** to what it asked for; the
//! signer answers with [`SignerOutput`]s: API requests to send through the apiserver
//! (the limiter token already taken: send at `send_at`), issuer calls, and results
//! (signed, marked Failed, events). It schedules its own timers ([`SignerEvent`]:
//! delayed requeues, `Retry-After` sleeps, SDK back-offs, lease renewals).
//!
//! Common rules (client-go workqueue, see [`super::client`]): an object is queued on add
//! and update, once while it waits; a worker takes it, reconciles, and on error requeues
//! it rate-limited (`AddRateLimited`) or on success forgets its failures. The lister is
//! read at the start of each reconcile: an object gone from it is **skipped at no cost**.
//! A 429 (or 5xx with `Retry-After`) is retried by the REST client (sleep, new token, at
//! most 10 times); other errors go to the reconcile.
//!
//! # cert-manager (`pkg/controller/certificatesigningrequests`, v1.12 ... v1.21; quotes v1.17.0)
//! - Off by default (alpha gate `ExperimentalCertificateSigningRequestControllers`); only
//!   built-in issuers ([`BuiltinIssuer::Ca`], [`BuiltinIssuer::Vault`] here). Only the
//!   leader works.
//! - `--concurrent-workers` 5; per-item back-off 5 s ... 5 min, no overall bucket.
//! - **One 20 QPS / 50 burst bucket for every API call of the process** (context.go:257-279):
//!   status updates, events, SubjectAccessReviews, and leader-election renewals (Lease
//!   in kube-system, `LeaseDuration` 60 s, `RenewDeadline` 40 s, `RetryPeriod` 15 s): a
//!   renewal is one Update with a 40 s deadline, tried every 15 s until it succeeds or
//!   the deadline passes; then **leader election lost** (the process exits). The
//!   limiter refuses at once a renewal whose token would come after its deadline.
//! - Reconcile (`sync.go:39-164`): skip Failed, Denied, signed; not approved -> Normal
//!   `WaitingApproval`, done; a namespaced Issuer costs a SubjectAccessReview; issuer not
//!   ready -> Warning `IssuerNotReady`, no requeue; sign.
//!   CA (`ca/ca.go:94-155`): signing error -> Warning `SigningError` + Failed condition
//!   (terminal); success -> UpdateStatus with the certificate -> Normal
//!   `CertificateIssued` "Certificate fetched from issuer successfully".
//!   Vault (`vault/vault.go:85-142`): **any** Vault error (a 429 of a rate-limit quota
//!   included) -> Warning `ErrorSigning` + Failed (terminal); success -> UpdateStatus ->
//!   Normal `CertificateIssued` "Certificate signed successfully". A failed status
//!   update is an error (requeue); if the CSR was deleted meanwhile (istiod gave up) the
//!   signing was **wasted** and the next pass finds it gone.
//!
//! # controller-runtime signer (`cert-manager/signer-ca` `controllers/certificatesigningrequest_controller.go`, da6adac8)
//! - Get from the cache: gone, being deleted, another signer, signed, not approved ->
//!   ignore. Sign; an error is returned: **requeue with back-off, never Failed** (marking
//!   Failed is an assumption, [`ControllerRuntimeConfig::mark_failed_on_issuer_error`],
//!   off). `Status().Patch` the certificate; then Normal `Signed` **"The CSR has been
//!   signed"**. A patch error requeues (wasted if the CSR is gone).
//! - `MaxConcurrentReconciles` 1; controller-runtime's default rate limiter (5 ms ...
//!   1000 s per item, max with 10 qps / burst 100); its client 20 QPS / burst 30
//!   (`pkg/client/config`); the event recorder has a clientset (and bucket) of its own.
//!
//! # aws-privateca-issuer (`pkg/controllers/certificaterequest_controller.go`, HEAD cc32c134 = v1.9.1)
//! - Ignore Ready, Failed, Denied, not approved, signed. Issuer not ready -> Pending +
//!   requeue. No ARN annotation: `IssueCertificate` (SDK standard retryer); **any**
//!   error after the SDK's retries -> Ready=False `Failed` (terminal); success ->
//!   `Update` the annotation -> requeue (a conflict loses the annotation: the next pass
//!   issues again). ARN present: `GetCertificate`; `RequestInProgressException` (retried
//!   by the SDK too) -> Pending + requeue; other errors -> Failed; success -> Ready
//!   `Issued`. Every status write is a `Status().Update` plus an event (Warning when
//!   False); status conflicts are swallowed.
//! - `MaxConcurrentReconciles` 1, controller-runtime's default rate limiter, client
//!   20 / 30.
//!
//! # Not modelled
//! Watch-triggered re-enqueues of the controller's own writes are the owner's to feed
//! (it applies the write and sends the informer update). Event posting is fire and
//! forget: it takes its token and goes through APF, but its failures are not retried
//! (client-go's broadcaster retries 12 times, 10 s apart). cert-manager's Vault client
//! creation (a TokenRequest per sign with service-account auth) and
//! aws-privateca-issuer's one `DescribeCertificateAuthority` per provisioner are left out.

use std::collections::BTreeMap;

use super::apiserver::{Resource, Verb};
use super::client::{RateLimiter, Reply, RestClient, RetryDecision, WorkQueue};
use super::issuer::{
    AwsRetryConfig, AwsSdkRetryer, PcaCertificate, SdkAttempt, SdkDecision, SdkFailure,
    SdkOperation,
};
use crate::engine::{RngStream, Schedule, SimTime, TraceEvent};

// ----- configuration ------------------------------------------------------------------

/// A cert-manager built-in issuer type (external issuers are not served by its CSR
/// controllers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinIssuer {
    /// `ca`: signs in-process with a key pair from a Secret.
    Ca,
    /// `vault`: Vault PKI `/sign`.
    Vault,
}

/// cert-manager's controller (CSR controllers on).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CertManagerConfig {
    /// `--concurrent-workers` (5).
    pub workers: u32,
    /// `--kube-api-qps` (20).
    pub qps: f64,
    /// `--kube-api-burst` (50).
    pub burst: u32,
    /// The issuer type.
    pub issuer: BuiltinIssuer,
    /// A namespaced `Issuer` (one SubjectAccessReview per sign) rather than a
    /// `ClusterIssuer`.
    pub namespaced_issuer: bool,
    /// Leader-election renewals on the shared bucket.
    pub leader_election: bool,
}

impl Default for CertManagerConfig {
    fn default() -> Self {
        CertManagerConfig {
            workers: 5,
            qps: 20.0,
            burst: 50,
            issuer: BuiltinIssuer::Ca,
            namespaced_issuer: false,
            leader_election: true,
        }
    }
}

/// A controller-runtime CSR signer (signer-ca pattern).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerRuntimeConfig {
    /// `MaxConcurrentReconciles` (1).
    pub workers: u32,
    /// Client QPS (20, controller-runtime's `GetConfig` default).
    pub qps: f64,
    /// Client burst (30).
    pub burst: u32,
    /// **Assumption** (not in the source): mark the CSR Failed on an issuer error.
    pub mark_failed_on_issuer_error: bool,
}

impl Default for ControllerRuntimeConfig {
    fn default() -> Self {
        ControllerRuntimeConfig {
            workers: 1,
            qps: 20.0,
            burst: 30,
            mark_failed_on_issuer_error: false,
        }
    }
}

/// aws-privateca-issuer's CertificateRequest controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsPcaIssuerConfig {
    /// `MaxConcurrentReconciles` (1).
    pub workers: u32,
    /// Client QPS (20).
    pub qps: f64,
    /// Client burst (30).
    pub burst: u32,
    /// The SDK retryer.
    pub sdk: AwsRetryConfig,
}

impl Default for AwsPcaIssuerConfig {
    fn default() -> Self {
        AwsPcaIssuerConfig {
            workers: 1,
            qps: 20.0,
            burst: 30,
            sdk: AwsRetryConfig::default(),
        }
    }
}

/// Which signer controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignerConfig {
    /// cert-manager's CSR controller.
    CertManager(CertManagerConfig),
    /// A controller-runtime CSR signer.
    ControllerRuntime(ControllerRuntimeConfig),
    /// aws-privateca-issuer (CertificateRequests).
    AwsPcaIssuer(AwsPcaIssuerConfig),
}

impl SignerConfig {
    /// `cert-manager`, `controller-runtime` or `aws-privateca-issuer`.
    pub fn kind(&self) -> &'static str {
        match self {
            SignerConfig::CertManager(_) => "cert-manager",
            SignerConfig::ControllerRuntime(_) => "controller-runtime",
            SignerConfig::AwsPcaIssuer(_) => "aws-privateca-issuer",
        }
    }

    fn workers(&self) -> u32 {
        match self {
            SignerConfig::CertManager(c) => c.workers,
            SignerConfig::ControllerRuntime(c) => c.workers,
            SignerConfig::AwsPcaIssuer(c) => c.workers,
        }
    }

    /// Checks the fields.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.workers() == 0 {
            return Err(format!("{prefix}.workers: must be >= 1, got 0"));
        }
        Ok(())
    }
}

// ----- inputs and outputs -------------------------------------------------------------

/// What the signer's informer knows of one object (a CSR, or a CertificateRequest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectView {
    /// Approved (CSR `Approved`; CR `Approved`).
    pub approved: bool,
    /// Denied.
    pub denied: bool,
    /// CSR `Failed` condition / CR Ready=False reason Failed.
    pub failed: bool,
    /// Carries its certificate.
    pub has_certificate: bool,
    /// CR: the `aws-privateca-issuer/certificate-arn` annotation.
    pub arn: Option<PcaCertificate>,
    /// `resourceVersion`: the owner bumps it on every write.
    pub version: u64,
}

/// An informer delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InformerEvent {
    /// Added or updated.
    Upsert {
        /// The object's stable id.
        key: u64,
        /// Its state.
        view: ObjectView,
    },
    /// Deleted.
    Delete {
        /// The object's stable id.
        key: u64,
    },
}

/// Which job a reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobRef {
    /// Worker slot (`u32::MAX`: the leader-election renewer).
    pub worker: u32,
    /// Generation of that slot.
    pub gen: u32,
}

const LEASE_WORKER: u32 = u32::MAX;

/// What an API request does (for the owner's object store and for APF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiOp {
    /// Write the certificate into the CSR status (`UpdateStatus`/`Status().Patch`) or
    /// the CR status (`Status().Update`, Ready=True).
    WriteCertificate,
    /// Set the CSR's `Failed` condition, or the CR's Ready=False reason Failed.
    MarkFailed,
    /// CR Ready=False reason Pending.
    MarkPending,
    /// CR `Update` with the certificate-ARN annotation.
    SetArnAnnotation,
    /// `SubjectAccessReview` create.
    SubjectAccessReview,
    /// Post an event.
    Event,
    /// Renew the leader-election Lease.
    LeaseUpdate,
}

/// One API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiCall {
    /// What it does.
    pub op: ApiOp,
    /// The object (0 for the Lease and SARs).
    pub object: u64,
    /// The verb APF sees.
    pub verb: Verb,
    /// The resource APF sees.
    pub resource: Resource,
    /// In a namespace (Leases, CRs, events)?
    pub namespaced: bool,
    /// The `resourceVersion` an `Update` is based on (the lister's view when the
    /// reconcile started): a stale one gets 409 Conflict. `None` for writes without an
    /// optimistic lock (controller-runtime's merge patch, creates, the Lease here).
    pub base_version: Option<u64>,
}

impl ApiOp {
    fn call(self, object: u64) -> ApiCall {
        let (verb, resource, namespaced) = match self {
            ApiOp::WriteCertificate | ApiOp::MarkFailed | ApiOp::MarkPending => {
                (Verb::Update, Resource::Other, false)
            }
            ApiOp::SetArnAnnotation => (Verb::Update, Resource::Other, true),
            ApiOp::SubjectAccessReview => (Verb::Create, Resource::Other, false),
            ApiOp::Event => (Verb::Create, Resource::Other, true),
            ApiOp::LeaseUpdate => (Verb::Update, Resource::Leases, true),
        };
        ApiCall {
            op: self,
            object,
            verb,
            resource,
            namespaced,
            base_version: None,
        }
    }
}

/// The apiserver's answer to one attempt, as the owner saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiReply {
    /// 2xx.
    Ok,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// Another error (no retry by the client).
    Error,
    /// 429 with `Retry-After`.
    TooManyRequests {
        /// Seconds.
        retry_after_s: u32,
    },
}

/// What to ask the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerCall {
    /// Sign the object's request (CA in-process, Vault `/sign`, a USL CA ...).
    Sign {
        /// The object.
        key: u64,
    },
    /// PCA `IssueCertificate` with the object's idempotency token.
    PcaIssue {
        /// The CR.
        key: u64,
    },
    /// PCA `GetCertificate`.
    PcaGet {
        /// The CR.
        key: u64,
        /// What `IssueCertificate` returned.
        cert: PcaCertificate,
    },
}

/// The issuer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerReply {
    /// Signed (for `Sign`) / returned the certificate (`PcaGet`).
    Ok,
    /// `IssueCertificate` accepted.
    Issued(PcaCertificate),
    /// An error the SDK retries (throttling, 5xx), or any `Sign` failure.
    Error,
    /// `RequestInProgressException`.
    InProgress,
}

/// What the signer asks of its owner, or reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignerOutput {
    /// Send this request at `send_at` (its token is taken). Report the reply with
    /// [`Signer::api_reply`] if `job` is set; events are fire and forget.
    Api {
        /// The job waiting for it.
        job: Option<JobRef>,
        /// The request.
        call: ApiCall,
        /// When the client sends it.
        send_at: SimTime,
    },
    /// Call the issuer now; report with [`Signer::issuer_reply`].
    Issuer {
        /// The job waiting for it.
        job: JobRef,
        /// The call.
        call: IssuerCall,
    },
    /// The certificate was signed and (unless `wasted`) written to the object.
    Signed {
        /// The object.
        key: u64,
        /// The write failed (object gone or changed): the signing was wasted.
        wasted: bool,
    },
    /// The object was marked Failed (terminal).
    MarkedFailed {
        /// The object.
        key: u64,
    },
    /// A reconcile found the object gone from the lister (no cost).
    SkippedGone {
        /// The object.
        key: u64,
    },
    /// A Kubernetes event.
    Event {
        /// The object.
        key: u64,
        /// `Warning` (else `Normal`).
        warning: bool,
        /// Reason.
        reason: &'static str,
        /// Message.
        message: &'static str,
    },
    /// Leader election lost: the process exits (`leader election lost`).
    LeaderElectionLost,
}

/// The signer's timers. Owners only route them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerEvent {
    /// The signer's index.
    pub signer: u32,
    /// Which timer.
    pub kind: SignerTimer,
}

/// The signer's timer kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerTimer {
    /// A delayed requeue is due.
    Queue {
        /// Generation.
        gen: u64,
    },
    /// A `Retry-After` sleep of a job's request ended.
    ApiRetry {
        /// The job.
        job: JobRef,
    },
    /// An SDK back-off ended.
    SdkRetry {
        /// The job.
        job: JobRef,
    },
    /// Time for a lease renewal try.
    Lease {
        /// Generation.
        gen: u64,
    },
}

impl TraceEvent for SignerEvent {
    fn kind(&self) -> u32 {
        match self.kind {
            SignerTimer::Queue { .. } => 0x300,
            SignerTimer::ApiRetry { .. } => 0x301,
            SignerTimer::SdkRetry { .. } => 0x302,
            SignerTimer::Lease { .. } => 0x303,
        }
    }
    fn entity(&self) -> u64 {
        let local = match self.kind {
            SignerTimer::Queue { gen } | SignerTimer::Lease { gen } => gen,
            SignerTimer::ApiRetry { job } | SignerTimer::SdkRetry { job } => {
                ((job.gen as u64) << 32) | job.worker as u64
            }
        };
        ((self.signer as u64) << 48) ^ local
    }
}

// ----- the signer ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sar,
    Signing,
    WritingCertificate,
    MarkingFailed,
    MarkingPending,
    Issuing,
    SettingArn,
    Getting,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    key: u64,
    gen: u32,
    step: Step,
    /// Retries of the request in flight (client-go).
    retries: u32,
    call: ApiCall,
    /// The SDK operation in flight.
    sdk: SdkOperation,
    issuer_call: Option<IssuerCall>,
    /// Requeue (rate limited) when the reconcile ends, instead of forgetting.
    requeue: bool,
    /// The lister's `resourceVersion` when the reconcile started.
    version: u64,
}

#[derive(Debug, Clone)]
struct Lease {
    renew_deadline: SimTime,
    retry_period: SimTime,
    /// Deadline of the renewal under way (`None`: renewed, waiting for the next period).
    attempt_deadline: Option<SimTime>,
    in_flight: bool,
    retries: u32,
    gen: u64,
    lost: bool,
    renewals: u64,
}

/// One signer controller process. See the module docs.
#[derive(Debug, Clone)]
pub struct Signer {
    index: u32,
    config: SignerConfig,
    client: RestClient,
    /// The event recorder's own client (`None`: events share `client`).
    event_client: Option<RestClient>,
    queue: WorkQueue,
    limiter: RateLimiter,
    workers: Vec<Option<Job>>,
    worker_gens: Vec<u32>,
    lister: BTreeMap<u64, ObjectView>,
    issuer_ready: bool,
    sdk: Option<AwsSdkRetryer>,
    rng: RngStream,
    queue_gen: u64,
    queue_due: Option<SimTime>,
    lease: Option<Lease>,
    /// Inside `pump`'s loop: reconciles that end at once do not pump again.
    pumping: bool,
    // statistics
    reconciles: u64,
    signed: u64,
    wasted: u64,
    marked_failed: u64,
    skipped_gone: u64,
    issuer_calls: u64,
}

impl Signer {
    /// A signer numbered `index`; `rng` is its own stream (SDK jitter).
    pub fn new(index: u32, config: SignerConfig, rng: RngStream) -> Signer {
        let (client, event_client, limiter, sdk) = match config {
            SignerConfig::CertManager(c) => (
                RestClient::client_go(c.qps, c.burst),
                None,
                RateLimiter::cert_manager_default(),
                None,
            ),
            SignerConfig::ControllerRuntime(c) => (
                RestClient::client_go(c.qps, c.burst),
                Some(RestClient::client_go(c.qps, c.burst)),
                RateLimiter::default_controller(),
                None,
            ),
            SignerConfig::AwsPcaIssuer(c) => (
                RestClient::client_go(c.qps, c.burst),
                Some(RestClient::client_go(c.qps, c.burst)),
                RateLimiter::default_controller(),
                Some(AwsSdkRetryer::new(c.sdk)),
            ),
        };
        let lease = match config {
            SignerConfig::CertManager(c) if c.leader_election => Some(Lease {
                renew_deadline: SimTime::from_secs(40),
                retry_period: SimTime::from_secs(15),
                attempt_deadline: None,
                in_flight: false,
                retries: 0,
                gen: 0,
                lost: false,
                renewals: 0,
            }),
            _ => None,
        };
        let n = config.workers() as usize;
        Signer {
            index,
            config,
            client,
            event_client,
            queue: WorkQueue::new(),
            limiter,
            workers: vec![None; n],
            worker_gens: vec![0; n],
            lister: BTreeMap::new(),
            issuer_ready: true,
            sdk,
            rng,
            queue_gen: 0,
            queue_due: None,
            lease,
            pumping: false,
            reconciles: 0,
            signed: 0,
            wasted: 0,
            marked_failed: 0,
            skipped_gone: 0,
            issuer_calls: 0,
        }
    }

    /// Starts the process at `now` (the first lease renewal is due one period later).
    pub fn start(&mut self, sched: &mut impl Schedule<SignerEvent>) {
        let now = sched.now();
        if let Some(l) = self.lease.as_mut() {
            l.gen += 1;
            let (gen, at) = (l.gen, now + l.retry_period);
            sched.schedule_at(
                at,
                SignerEvent {
                    signer: self.index,
                    kind: SignerTimer::Lease { gen },
                },
            );
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SignerConfig {
        &self.config
    }

    /// The process's main client (cert-manager: shared by everything).
    pub fn client(&self) -> &RestClient {
        &self.client
    }

    /// Marks the issuer (not) ready.
    pub fn set_issuer_ready(&mut self, ready: bool) {
        self.issuer_ready = ready;
    }

    /// An informer delivery now.
    pub fn informer(
        &mut self,
        ev: InformerEvent,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        match ev {
            InformerEvent::Upsert { key, view } => {
                self.lister.insert(key, view);
                self.queue.add(key);
            }
            InformerEvent::Delete { key } => {
                self.lister.remove(&key);
                self.queue.add(key);
            }
        }
        self.pump(sched, out);
    }

    /// The reply to the request of `job` (the last attempt's).
    pub fn api_reply(
        &mut self,
        job: JobRef,
        reply: ApiReply,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        if job.worker == LEASE_WORKER {
            self.lease_reply(job, reply, sched, out);
            return;
        }
        let Some(j) = self.job(job) else { return };
        let wire = match reply {
            ApiReply::TooManyRequests { retry_after_s } => Reply::TooManyRequests { retry_after_s },
            _ => Reply::Final,
        };
        match self.client.on_reply(now, j.retries, wire) {
            RetryDecision::RetryAt { at, retry } => {
                self.job_mut(job).expect("live").retries = retry;
                sched.schedule_at(
                    at,
                    SignerEvent {
                        signer: self.index,
                        kind: SignerTimer::ApiRetry { job },
                    },
                );
            }
            RetryDecision::Return => {
                let result = match reply {
                    ApiReply::TooManyRequests { .. } => ApiReply::Error,
                    r => r,
                };
                self.after_api(job, result, sched, out);
            }
        }
    }

    /// The issuer's answer to the call of `job`.
    pub fn issuer_reply(
        &mut self,
        job: JobRef,
        reply: IssuerReply,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let Some(j) = self.job(job) else { return };
        let w = job.worker as usize;
        // The SDK's retry loop (aws-privateca-issuer only).
        if let (Some(sdk), Some(IssuerCall::PcaIssue { .. } | IssuerCall::PcaGet { .. })) =
            (self.sdk.as_mut(), j.issuer_call)
        {
            let attempt = match reply {
                IssuerReply::Ok | IssuerReply::Issued(_) => SdkAttempt::Success,
                IssuerReply::Error | IssuerReply::InProgress => SdkAttempt::Retryable,
            };
            let mut op = j.sdk;
            let d = sdk.on_attempt(&mut op, attempt, &mut self.rng);
            self.workers[w].as_mut().expect("live").sdk = op;
            match d {
                SdkDecision::RetryAfter(delay) => {
                    sched.schedule_in(
                        delay,
                        SignerEvent {
                            signer: self.index,
                            kind: SignerTimer::SdkRetry { job },
                        },
                    );
                    return;
                }
                // The SDK returns the quota error itself, not the last API error
                // (`aws/retry/middleware.go`: `return ..., retryTokenErr`): a
                // RequestInProgress is then no longer recognised, the CR goes Failed.
                SdkDecision::Failed(SdkFailure::QuotaExceeded) => {
                    return self.after_issuer(job, IssuerReply::Error, sched, out);
                }
                _ => {}
            }
        }
        self.after_issuer(job, reply, sched, out);
    }

    /// Handles one of this signer's timers.
    pub fn handle(
        &mut self,
        ev: SignerTimer,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        match ev {
            SignerTimer::Queue { gen } => {
                if gen != self.queue_gen {
                    return;
                }
                self.queue_due = None;
                self.pump(sched, out);
            }
            SignerTimer::ApiRetry { job } => {
                let Some(j) = self.job(job) else { return };
                // A new token after the sleep; the job's calls have no deadline.
                let send_at = self.client.acquire_retry(now, None).expect("no deadline");
                out.push(SignerOutput::Api {
                    job: Some(job),
                    call: j.call,
                    send_at,
                });
            }
            SignerTimer::SdkRetry { job } => {
                let Some(j) = self.job(job) else { return };
                if let Some(call) = j.issuer_call {
                    self.issuer_calls += 1;
                    out.push(SignerOutput::Issuer { job, call });
                }
            }
            SignerTimer::Lease { gen } => self.lease_tick(gen, sched, out),
        }
    }

    // ----- statistics -----------------------------------------------------------------

    /// Objects ready for a worker.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
    /// The longest the ready queue has been.
    pub fn peak_queue_len(&self) -> usize {
        self.queue.peak_len()
    }
    /// Objects waiting for a rate-limited requeue.
    pub fn waiting_requeues(&self) -> usize {
        self.queue.waiting()
    }
    /// Workers busy.
    pub fn busy_workers(&self) -> usize {
        self.workers.iter().filter(|w| w.is_some()).count()
    }
    /// Reconciles started.
    pub fn reconciles(&self) -> u64 {
        self.reconciles
    }
    /// Certificates signed and written.
    pub fn signed(&self) -> u64 {
        self.signed
    }
    /// Signings whose write failed (object gone or changed).
    pub fn wasted_signings(&self) -> u64 {
        self.wasted
    }
    /// Objects marked Failed.
    pub fn marked_failed(&self) -> u64 {
        self.marked_failed
    }
    /// Reconciles that found the object gone.
    pub fn skipped_gone(&self) -> u64 {
        self.skipped_gone
    }
    /// Issuer calls made (SDK retries included).
    pub fn issuer_calls(&self) -> u64 {
        self.issuer_calls
    }
    /// Successful lease renewals.
    pub fn lease_renewals(&self) -> u64 {
        self.lease.as_ref().map(|l| l.renewals).unwrap_or(0)
    }
    /// The SDK retryer (aws-privateca-issuer).
    pub fn sdk(&self) -> Option<&AwsSdkRetryer> {
        self.sdk.as_ref()
    }

    // ----- internals ------------------------------------------------------------------

    fn job(&self, r: JobRef) -> Option<Job> {
        self.workers
            .get(r.worker as usize)
            .and_then(|j| *j)
            .filter(|j| j.gen == r.gen)
    }

    fn job_mut(&mut self, r: JobRef) -> Option<&mut Job> {
        self.workers
            .get_mut(r.worker as usize)
            .and_then(|j| j.as_mut())
            .filter(|j| j.gen == r.gen)
    }

    /// Starts reconciles while a worker is free and an object is ready; keeps the one
    /// requeue timer right.
    fn pump(&mut self, sched: &mut impl Schedule<SignerEvent>, out: &mut Vec<SignerOutput>) {
        if self.pumping {
            return;
        }
        self.pumping = true;
        let now = sched.now();
        self.queue.promote_due(now);
        while let Some(w) = self.workers.iter().position(|j| j.is_none()) {
            let Some(key) = self.queue.get() else { break };
            self.reconciles += 1;
            self.worker_gens[w] = self.worker_gens[w].wrapping_add(1);
            self.reconcile(w, key, sched, out);
        }
        self.pumping = false;
        if let Some(due) = self.queue.next_due() {
            if self.queue_due.is_none_or(|d| d > due) {
                self.queue_gen += 1;
                self.queue_due = Some(due);
                sched.schedule_at(
                    due,
                    SignerEvent {
                        signer: self.index,
                        kind: SignerTimer::Queue {
                            gen: self.queue_gen,
                        },
                    },
                );
            }
        }
    }

    fn event(
        &mut self,
        key: u64,
        warning: bool,
        reason: &'static str,
        message: &'static str,
        now: SimTime,
        out: &mut Vec<SignerOutput>,
    ) {
        out.push(SignerOutput::Event {
            key,
            warning,
            reason,
            message,
        });
        let c = self.event_client.as_mut().unwrap_or(&mut self.client);
        let send_at = c.acquire(now, false, None).expect("no deadline");
        out.push(SignerOutput::Api {
            job: None,
            call: ApiOp::Event.call(key),
            send_at,
        });
    }

    fn request(
        &mut self,
        w: usize,
        step: Step,
        op: ApiOp,
        now: SimTime,
        out: &mut Vec<SignerOutput>,
    ) {
        let j = self.workers[w].as_mut().expect("live");
        j.step = step;
        j.retries = 0;
        j.call = op.call(j.key);
        // Updates carry the resourceVersion they read; controller-runtime's signer
        // patches with `client.MergeFrom` (no lock).
        let locked = matches!(
            op,
            ApiOp::WriteCertificate
                | ApiOp::MarkFailed
                | ApiOp::MarkPending
                | ApiOp::SetArnAnnotation
        ) && !matches!(self.config, SignerConfig::ControllerRuntime(_));
        if locked {
            j.call.base_version = Some(j.version);
        }
        let job = JobRef {
            worker: w as u32,
            gen: j.gen,
        };
        let call = j.call;
        let send_at = self.client.acquire(now, false, None).expect("no deadline");
        out.push(SignerOutput::Api {
            job: Some(job),
            call,
            send_at,
        });
    }

    fn ask_issuer(&mut self, w: usize, step: Step, call: IssuerCall, out: &mut Vec<SignerOutput>) {
        let j = self.workers[w].as_mut().expect("live");
        j.step = step;
        j.sdk = SdkOperation::default();
        j.issuer_call = Some(call);
        self.issuer_calls += 1;
        out.push(SignerOutput::Issuer {
            job: JobRef {
                worker: w as u32,
                gen: j.gen,
            },
            call,
        });
    }

    /// Ends the reconcile of worker `w`: requeue rate-limited or forget, then free it.
    fn end(
        &mut self,
        w: usize,
        requeue: bool,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        let j = self.workers[w].take().expect("live");
        let requeue = requeue || j.requeue;
        self.queue.done(j.key);
        if requeue {
            let d = self.limiter.when(j.key, now);
            self.queue.add_after(j.key, now, d);
        } else {
            self.limiter.forget(j.key);
        }
        self.pump(sched, out);
    }

    fn reconcile(
        &mut self,
        w: usize,
        key: u64,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        self.workers[w] = Some(Job {
            key,
            gen: self.worker_gens[w],
            step: Step::Signing,
            retries: 0,
            call: ApiOp::Event.call(key),
            sdk: SdkOperation::default(),
            issuer_call: None,
            requeue: false,
            version: 0,
        });
        let Some(view) = self.lister.get(&key).copied() else {
            self.skipped_gone += 1;
            out.push(SignerOutput::SkippedGone { key });
            return self.end(w, false, sched, out);
        };
        self.workers[w].as_mut().expect("live").version = view.version;
        match self.config {
            SignerConfig::CertManager(c) => {
                if view.failed || view.denied || view.has_certificate {
                    return self.end(w, false, sched, out);
                }
                if !view.approved {
                    self.event(
                        key,
                        false,
                        "WaitingApproval",
                        "Waiting for the Approved condition before issuing",
                        now,
                        out,
                    );
                    return self.end(w, false, sched, out);
                }
                if c.namespaced_issuer {
                    return self.request(w, Step::Sar, ApiOp::SubjectAccessReview, now, out);
                }
                self.cert_manager_sign(w, key, sched, out)
            }
            SignerConfig::ControllerRuntime(c) => {
                // signer-ca never sets Failed, so it never checks it; under the
                // assumption that marks Failed, a Failed CSR is left alone.
                if view.has_certificate
                    || !view.approved
                    || (c.mark_failed_on_issuer_error && view.failed)
                {
                    return self.end(w, false, sched, out);
                }
                self.ask_issuer(w, Step::Signing, IssuerCall::Sign { key }, out)
            }
            SignerConfig::AwsPcaIssuer(_) => {
                if view.failed || view.denied || !view.approved || view.has_certificate {
                    return self.end(w, false, sched, out);
                }
                if !self.issuer_ready {
                    self.workers[w].as_mut().expect("live").requeue = true;
                    return self.request(w, Step::MarkingPending, ApiOp::MarkPending, now, out);
                }
                match view.arn {
                    None => self.ask_issuer(w, Step::Issuing, IssuerCall::PcaIssue { key }, out),
                    Some(cert) => {
                        self.ask_issuer(w, Step::Getting, IssuerCall::PcaGet { key, cert }, out)
                    }
                }
            }
        }
    }

    fn cert_manager_sign(
        &mut self,
        w: usize,
        key: u64,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        if !self.issuer_ready {
            self.event(
                key,
                true,
                "IssuerNotReady",
                "Referenced signer resource is not ready",
                now,
                out,
            );
            return self.end(w, false, sched, out);
        }
        self.ask_issuer(w, Step::Signing, IssuerCall::Sign { key }, out)
    }

    fn after_issuer(
        &mut self,
        job: JobRef,
        reply: IssuerReply,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        let w = job.worker as usize;
        let j = self.job(job).expect("live");
        let key = j.key;
        match (self.config, j.step, reply) {
            (_, Step::Signing, IssuerReply::Ok) => self.request(
                w,
                Step::WritingCertificate,
                ApiOp::WriteCertificate,
                now,
                out,
            ),
            (SignerConfig::CertManager(c), Step::Signing, _) => {
                let (reason, message) = match c.issuer {
                    BuiltinIssuer::Vault => ("ErrorSigning", "Vault failed to sign"),
                    BuiltinIssuer::Ca => ("SigningError", "Error signing certificate"),
                };
                self.event(key, true, reason, message, now, out);
                self.request(w, Step::MarkingFailed, ApiOp::MarkFailed, now, out)
            }
            (SignerConfig::ControllerRuntime(c), Step::Signing, _) => {
                if c.mark_failed_on_issuer_error {
                    self.request(w, Step::MarkingFailed, ApiOp::MarkFailed, now, out)
                } else {
                    self.end(w, true, sched, out) // "error auto signing csr": requeue
                }
            }
            (SignerConfig::AwsPcaIssuer(_), Step::Issuing, IssuerReply::Issued(_)) => {
                self.request(w, Step::SettingArn, ApiOp::SetArnAnnotation, now, out)
            }
            (SignerConfig::AwsPcaIssuer(_), Step::Getting, IssuerReply::Ok) => self.request(
                w,
                Step::WritingCertificate,
                ApiOp::WriteCertificate,
                now,
                out,
            ),
            (SignerConfig::AwsPcaIssuer(_), Step::Getting, IssuerReply::InProgress) => {
                self.event(
                    key,
                    true,
                    "Pending",
                    "waiting for certificate to be issued",
                    now,
                    out,
                );
                self.workers[w].as_mut().expect("live").requeue = true;
                self.request(w, Step::MarkingPending, ApiOp::MarkPending, now, out)
            }
            (SignerConfig::AwsPcaIssuer(_), Step::Issuing | Step::Getting, _) => {
                let message = if j.step == Step::Issuing {
                    "failed to request certificate from PCA"
                } else {
                    "failed to issue certificate from PCA"
                };
                self.event(key, true, "Failed", message, now, out);
                self.request(w, Step::MarkingFailed, ApiOp::MarkFailed, now, out)
            }
            (cfg, step, reply) => panic!("{} signer in {step:?} got {reply:?}", cfg.kind()),
        }
    }

    fn after_api(
        &mut self,
        job: JobRef,
        reply: ApiReply,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        let w = job.worker as usize;
        let j = self.job(job).expect("live");
        let key = j.key;
        let ok = reply == ApiReply::Ok;
        match (self.config, j.step) {
            (SignerConfig::CertManager(_), Step::Sar) => {
                if ok {
                    self.cert_manager_sign(w, key, sched, out)
                } else {
                    self.end(w, true, sched, out)
                }
            }
            (cfg, Step::WritingCertificate) => {
                if ok {
                    self.signed += 1;
                    out.push(SignerOutput::Signed { key, wasted: false });
                    match cfg {
                        SignerConfig::CertManager(c) => {
                            let message = match c.issuer {
                                BuiltinIssuer::Vault => "Certificate signed successfully",
                                BuiltinIssuer::Ca => "Certificate fetched from issuer successfully",
                            };
                            self.event(key, false, "CertificateIssued", message, now, out);
                        }
                        SignerConfig::ControllerRuntime(_) => {
                            self.event(key, false, "Signed", "The CSR has been signed", now, out)
                        }
                        SignerConfig::AwsPcaIssuer(_) => {
                            self.event(key, false, "Issued", "certificate issued", now, out)
                        }
                    }
                    self.end(w, false, sched, out)
                } else {
                    // aws-privateca-issuer swallows status conflicts (the certificate
                    // stays in PCA: a later pass gets it again); the rest requeue, and
                    // the signing was wasted.
                    let swallow =
                        matches!(cfg, SignerConfig::AwsPcaIssuer(_)) && reply == ApiReply::Conflict;
                    if !swallow {
                        self.wasted += 1;
                        out.push(SignerOutput::Signed { key, wasted: true });
                    }
                    if let SignerConfig::CertManager(c) = cfg {
                        let reason = match c.issuer {
                            BuiltinIssuer::Vault => "ErrorUpdate",
                            BuiltinIssuer::Ca => "SigningError",
                        };
                        self.event(key, true, reason, "Error updating certificate", now, out);
                    }
                    self.end(w, !swallow, sched, out)
                }
            }
            (cfg, Step::MarkingFailed) => {
                if ok
                    || (matches!(cfg, SignerConfig::AwsPcaIssuer(_)) && reply == ApiReply::Conflict)
                {
                    if ok {
                        self.marked_failed += 1;
                        out.push(SignerOutput::MarkedFailed { key });
                    }
                    self.end(w, false, sched, out)
                } else {
                    self.end(w, true, sched, out)
                }
            }
            (_, Step::MarkingPending) => self.end(w, true, sched, out),
            (_, Step::SettingArn) => {
                // Success or conflict: requeue (a conflict lost the annotation, so the
                // next pass issues again); another error is returned: requeue too.
                self.end(w, true, sched, out)
            }
            (cfg, step) => panic!("{} signer in {step:?} got an API reply", cfg.kind()),
        }
    }

    // ----- leader election ------------------------------------------------------------

    fn lease_tick(
        &mut self,
        gen: u64,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        let Some(l) = self.lease.as_mut() else { return };
        if gen != l.gen || l.lost {
            return;
        }
        let deadline = *l.attempt_deadline.get_or_insert(now + l.renew_deadline);
        if now >= deadline {
            l.lost = true;
            out.push(SignerOutput::LeaderElectionLost);
            return;
        }
        if l.in_flight {
            return; // the reply will decide
        }
        match self.client.acquire(now, false, Some(deadline)) {
            Ok(send_at) => {
                let l = self.lease.as_mut().expect("lease");
                l.in_flight = true;
                l.retries = 0;
                out.push(SignerOutput::Api {
                    job: Some(JobRef {
                        worker: LEASE_WORKER,
                        gen: l.gen as u32,
                    }),
                    call: ApiOp::LeaseUpdate.call(0),
                    send_at,
                });
            }
            Err(_) => {
                // "would exceed context deadline": this try fails at once; poll again.
                self.lease_next_try(now, sched);
            }
        }
    }

    fn lease_next_try(&mut self, now: SimTime, sched: &mut impl Schedule<SignerEvent>) {
        let l = self.lease.as_mut().expect("lease");
        let deadline = l.attempt_deadline.expect("under way");
        l.gen += 1;
        let at = (now + l.retry_period).min(deadline);
        sched.schedule_at(
            at,
            SignerEvent {
                signer: self.index,
                kind: SignerTimer::Lease { gen: l.gen },
            },
        );
    }

    fn lease_reply(
        &mut self,
        job: JobRef,
        reply: ApiReply,
        sched: &mut impl Schedule<SignerEvent>,
        out: &mut Vec<SignerOutput>,
    ) {
        let now = sched.now();
        let Some(l) = self.lease.as_mut() else { return };
        if l.lost || !l.in_flight {
            return;
        }
        let _ = job;
        let deadline = l.attempt_deadline.expect("under way");
        if let ApiReply::TooManyRequests { retry_after_s } = reply {
            let retries = l.retries;
            if let RetryDecision::RetryAt { at, retry } =
                self.client
                    .on_reply(now, retries, Reply::TooManyRequests { retry_after_s })
            {
                if at < deadline {
                    if let Ok(send_at) = self.client.acquire_retry(at, Some(deadline)) {
                        let l = self.lease.as_mut().expect("lease");
                        l.retries = retry;
                        out.push(SignerOutput::Api {
                            job: Some(JobRef {
                                worker: LEASE_WORKER,
                                gen: l.gen as u32,
                            }),
                            call: ApiOp::LeaseUpdate.call(0),
                            send_at,
                        });
                        return;
                    }
                }
            }
        }
        let l = self.lease.as_mut().expect("lease");
        l.in_flight = false;
        if reply == ApiReply::Ok {
            l.renewals += 1;
            l.attempt_deadline = None;
            l.gen += 1;
            let at = now + l.retry_period;
            sched.schedule_at(
                at,
                SignerEvent {
                    signer: self.index,
                    kind: SignerTimer::Lease { gen: l.gen },
                },
            );
        } else if now >= deadline {
            l.lost = true;
            out.push(SignerOutput::LeaderElectionLost);
        } else {
            self.lease_next_try(now, sched);
        }
    }
}

// ----- istio-csr ----------------------------------------------------------------------

/// One agent `CreateCertificate` in istio-csr (cert-manager/istio-csr v0.17.0,
/// `pkg/server/server.go:202-237`, `pkg/certmanager/certmanager.go:208-331`).
///
/// TokenReview (istio's kube client: its own 5 QPS / 10 bucket), then a
/// CertificateRequest Create, a watch (free), a Get in case it is already terminal, then
/// the wait — **no timeout**: until the CR carries its certificate (success), is Denied,
/// Failed or deleted (error -> `codes.Internal`, retried by the agent with a new CR), or
/// the agent goes away. The CR is deleted after use (a goroutine with
/// `context.Background()`, default `--preserve-certificate-requests=false`): the reply
/// does not wait for it. Create, Get and Delete take tokens of the cert-manager client's
/// one 5/10 bucket (3 per CSR); every replica serves (no leadership).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IstioCsrFlow {
    state: IstioCsrState,
    created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IstioCsrState {
    Idle,
    TokenReview,
    Create,
    OpenWatch,
    Get,
    Wait,
    Done,
}

/// The CR as istio-csr reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrState {
    /// Not terminal, no certificate.
    Pending,
    /// Carries the certificate.
    Signed,
    /// Denied, or Ready=False reason Failed.
    Failed,
    /// Gone (a Get 404 or a watch Deleted event).
    Deleted,
}

/// What istio-csr does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IstioCsrAction {
    /// TokenReview create (token from the istio client).
    TokenReview,
    /// CR Create (token from the cert-manager client).
    CreateCr,
    /// Watch the CR by name (no token).
    WatchCr,
    /// Get the CR (token).
    GetCr,
    /// Wait on the watch until the CR is terminal or signed (no timeout).
    AwaitCr,
    /// Answer the agent; if `delete_cr`, also send the CR's Delete (token) after.
    Done {
        /// Success, or `codes.Internal` / `Unauthenticated`.
        result: Result<(), &'static str>,
        /// Delete the CR (it was created).
        delete_cr: bool,
    },
}

impl IstioCsrFlow {
    /// A flow not started.
    pub fn new() -> IstioCsrFlow {
        IstioCsrFlow {
            state: IstioCsrState::Idle,
            created: false,
        }
    }

    /// Starts: the TokenReview.
    pub fn start(&mut self) -> IstioCsrAction {
        self.state = IstioCsrState::TokenReview;
        IstioCsrAction::TokenReview
    }

    fn done(&mut self, result: Result<(), &'static str>) -> IstioCsrAction {
        self.state = IstioCsrState::Done;
        IstioCsrAction::Done {
            result,
            delete_cr: self.created,
        }
    }

    /// The answer to the last call (`ok`) or, for Get/Await, the CR's state.
    pub fn next(&mut self, ok: bool, cr: CrState) -> IstioCsrAction {
        match self.state {
            IstioCsrState::TokenReview if ok => {
                self.state = IstioCsrState::Create;
                IstioCsrAction::CreateCr
            }
            IstioCsrState::TokenReview => self.done(Err("Unauthenticated")),
            IstioCsrState::Create if ok => {
                self.created = true;
                self.state = IstioCsrState::OpenWatch;
                IstioCsrAction::WatchCr
            }
            IstioCsrState::Create => self.done(Err("failed to sign certificate request")),
            IstioCsrState::OpenWatch if ok => {
                self.state = IstioCsrState::Get;
                IstioCsrAction::GetCr
            }
            IstioCsrState::OpenWatch => self.done(Err("failed to sign certificate request")),
            IstioCsrState::Get | IstioCsrState::Wait => match (ok, cr) {
                (false, _) | (_, CrState::Failed | CrState::Deleted) => {
                    self.done(Err("failed to sign certificate request"))
                }
                (true, CrState::Signed) => self.done(Ok(())),
                (true, CrState::Pending) => {
                    self.state = IstioCsrState::Wait;
                    IstioCsrAction::AwaitCr
                }
            },
            IstioCsrState::Idle | IstioCsrState::Done => {
                panic!("istio-csr flow in {:?} takes no input", self.state)
            }
        }
    }
}

impl Default for IstioCsrFlow {
    fn default() -> Self {
        IstioCsrFlow::new()
    }
}

#[cfg(test)]
mod tests;
