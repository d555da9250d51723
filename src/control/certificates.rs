//! cert-manager's Certificate controllers: trigger, key-manager, request-manager,
//! issuing and readiness, with the CertificateRequest approver and the built-in `ca`
//! CertificateRequest controller that sign what request-manager asks for.
//!
//! Read from cert-manager/cert-manager at v1.21.1+ (HEAD 2d0d7f7f, 2026-08-22):
//! `pkg/controller/controller.go`, `pkg/controller/util.go`,
//! `pkg/controller/certificates/{trigger,keymanager,requestmanager,issuing,readiness}`,
//! `pkg/controller/certificaterequests/{approver,ca,sync.go}` and
//! `internal/apis/config/controller/v1alpha1/defaults.go`.
//!
//! # What the source does, and what this component keeps
//! - **One process, one client bucket.** Every controller's API call (status updates,
//!   creates, events) takes a token from one client-go bucket, `--kube-api-qps` 20 /
//!   `--kube-api-burst` 50 (`defaults.go:59-60`); a 429 is retried by the REST client.
//! - **Workers per controller.** `controller.Run(workers)` starts
//!   `--concurrent-workers` (5, `defaults.go:82`) goroutines for *each* controller.
//! - **Workqueues.** The Certificate controllers use `DefaultCertificateRateLimiter`
//!   (per item 1 s ... 30 s, `util.go:45-49`); the CertificateRequest controllers
//!   (approver, issuer) `DefaultItemBasedRateLimiter` (5 s ... 5 min, `util.go:39-43`).
//!   A sync error -> `AddRateLimited`; success -> `Forget` (`controller.go:128-167`). An
//!   optimistic-locking error ("the object has been modified") is logged as
//!   "re-queuing item due to optimistic locking on resource" and requeued the same way.
//! - **Optimistic locking.** Each controller reads the Certificate from the shared
//!   informer cache, which lags the server by the watch latency (`informer_delay`), and
//!   writes `UpdateStatus` with the resourceVersion it read; a write that lands after
//!   another controller's write to the same Certificate gets 409 Conflict. Secret and
//!   CertificateRequest creates do not conflict. (With the alpha `ServerSideApply`
//!   gate, off by default, status writes are applies and do not conflict: not modelled.)
//! - **Every controller watches Certificates** (and the Secrets / CertificateRequests
//!   they own, mapped to the owning Certificate): each write wakes all of them.
//! - **Per Certificate, on success** (a new Certificate, its Secret absent), the writes
//!   are: readiness `UpdateStatus` Ready=False (DoesNotExist); trigger `UpdateStatus`
//!   Issuing=True + event `Issuing`; key-manager `Create` Secret (next private key) +
//!   event `Generated`, then `UpdateStatus` nextPrivateKeySecretName; request-manager
//!   `Create` CertificateRequest + event `Requested`; approver `UpdateStatus` Approved on
//!   the CR; the `ca` CR controller signs in-process and `UpdateStatus` Ready on the CR,
//!   with event `CertificateIssued`; issuing `Create` Secret (the signed certificate), then
//!   `UpdateStatus` (Issuing removed, revision 1) + event `Issuing`; readiness
//!   `UpdateStatus` Ready=True. [`CALLS_PER_CERTIFICATE`] of them, conflicts aside.
//! - **Failed issuance back-off** (trigger `shouldBackoffReissuingOnFailure`): after a
//!   CR failed, issuing sets `lastFailureTime` and `failedIssuanceAttempts` += 1; trigger
//!   does not re-issue before `lastFailureTime + min(1 h x 2^(attempts-1), 32 h)`
//!   (`--certificate-request-minimum-backoff-duration` 1 h, maximum 32 h,
//!   `defaults.go:103-104`; releases before the exponential rule waited a flat 1 h).
//!
//! # Not modelled
//! revision-manager (no writes unless `revisionHistoryLimit` is set), the temporary
//! certificate, owner-reference GC, SubjectAccessReviews (ClusterIssuer assumed), leader
//! election renewals, issuers other than in-process signing (the owner may answer the
//! signing itself through [`CertOutput::Sign`]).

use std::collections::VecDeque;

use super::apiserver::{Resource, Verb};
use super::client::{RateLimiter, Reply, RestClient, RetryDecision, WorkQueue};
use crate::engine::{Schedule, SimTime, TraceEvent};

/// API calls per Certificate on a conflict-free success, events included (see the
/// module docs): 10 writes and 5 events.
pub const CALLS_PER_CERTIFICATE: u64 = 15;

/// The controllers' configuration (cert-manager's flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CertControllersConfig {
    /// `--concurrent-workers` per controller (5).
    pub workers: u32,
    /// `--kube-api-qps` (20).
    pub qps: f64,
    /// `--kube-api-burst` (50).
    pub burst: u32,
    /// `DefaultCertificateRateLimiter` base (1 s).
    pub queue_base: SimTime,
    /// ... and cap (30 s).
    pub queue_max: SimTime,
    /// `DefaultItemBasedRateLimiter` (CR controllers) base (5 s).
    pub cr_queue_base: SimTime,
    /// ... and cap (5 min).
    pub cr_queue_max: SimTime,
    /// `--certificate-request-minimum-backoff-duration` (1 h).
    pub min_backoff: SimTime,
    /// `--certificate-request-maximum-backoff-duration` (32 h).
    pub max_backoff: SimTime,
    /// The watch latency: a write is in the informer cache this long after it landed.
    pub informer_delay: SimTime,
}

impl Default for CertControllersConfig {
    fn default() -> Self {
        CertControllersConfig {
            workers: 5,
            qps: 20.0,
            burst: 50,
            queue_base: SimTime::from_secs(1),
            queue_max: SimTime::from_secs(30),
            cr_queue_base: SimTime::from_secs(5),
            cr_queue_max: SimTime::from_secs(300),
            min_backoff: SimTime::from_secs(3600),
            max_backoff: SimTime::from_secs(32 * 3600),
            informer_delay: SimTime::from_millis(100),
        }
    }
}

/// Trigger's back-off after `attempts` failed issuances (`shouldBackoffReissuingOnFailure`).
pub fn failed_issuance_backoff(attempts: u32, min: SimTime, max: SimTime) -> SimTime {
    if attempts == 0 {
        return min;
    }
    let f = min.as_nanos() as f64 * 2f64.powi((attempts - 1).min(1024) as i32);
    if f >= max.as_nanos() as f64 {
        max
    } else {
        SimTime::from_secs_f64(f / 1e9).max(min)
    }
}

/// The controllers, in cert-manager's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ctl {
    /// `certificates-trigger`.
    Trigger,
    /// `certificates-readiness`.
    Readiness,
    /// `certificates-key-manager`.
    KeyManager,
    /// `certificates-request-manager`.
    RequestManager,
    /// `certificates-issuing`.
    Issuing,
    /// `certificaterequests-approver`.
    Approver,
    /// `certificaterequests-issuer-ca`.
    IssuerCa,
}

/// Every controller.
pub const CONTROLLERS: [Ctl; 7] = [
    Ctl::Trigger,
    Ctl::Readiness,
    Ctl::KeyManager,
    Ctl::RequestManager,
    Ctl::Issuing,
    Ctl::Approver,
    Ctl::IssuerCa,
];

impl Ctl {
    fn index(self) -> usize {
        self as usize
    }
    /// cert-manager's controller name.
    pub fn name(self) -> &'static str {
        match self {
            Ctl::Trigger => "certificates-trigger",
            Ctl::Readiness => "certificates-readiness",
            Ctl::KeyManager => "certificates-key-manager",
            Ctl::RequestManager => "certificates-request-manager",
            Ctl::Issuing => "certificates-issuing",
            Ctl::Approver => "certificaterequests-approver",
            Ctl::IssuerCa => "certificaterequests-issuer-ca",
        }
    }
    fn is_cr_controller(self) -> bool {
        matches!(self, Ctl::Approver | Ctl::IssuerCa)
    }
}

/// A CertificateRequest's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrView {
    /// Approved condition.
    pub approved: bool,
    /// Ready=True with a certificate.
    pub signed: bool,
    /// Ready=False reason Failed (terminal).
    pub failed: bool,
}

/// One Certificate with what it owns, as the server (or a cache) has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CertView {
    /// The Certificate's resourceVersion (bumped by each status write).
    pub rv: u64,
    /// The CertificateRequest's resourceVersion (bumped by each of its writes).
    pub cr_rv: u64,
    /// Ready condition written (any value).
    pub ready_set: bool,
    /// Ready=True.
    pub ready: bool,
    /// Issuing=True.
    pub issuing: bool,
    /// `status.nextPrivateKeySecretName` set.
    pub next_key_name: bool,
    /// The next-private-key Secret exists.
    pub next_key_secret: bool,
    /// The CertificateRequest of the current attempt.
    pub cr: Option<CrView>,
    /// The signed Secret exists and matches.
    pub secret: bool,
    /// `status.lastFailureTime`.
    pub last_failure: Option<SimTime>,
    /// `status.failedIssuanceAttempts`.
    pub failed_attempts: u32,
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// readiness: Ready=`ready`.
    Readiness {
        /// The value written.
        ready: bool,
    },
    /// trigger: Issuing=True.
    Issuing,
    /// key-manager: create the next-private-key Secret.
    CreateKeySecret,
    /// key-manager: `status.nextPrivateKeySecretName`.
    NextKeyName,
    /// request-manager: create the CR.
    CreateCr,
    /// approver: Approved.
    Approve,
    /// the issuer's CR controller: Ready (signed) or Failed.
    CrResult {
        /// Signed (else Failed).
        ok: bool,
    },
    /// issuing: create the signed Secret.
    CreateSecret,
    /// issuing: Issuing removed, revision set (success) or failure recorded.
    IssuingDone {
        /// The issuance succeeded.
        ok: bool,
    },
    /// An event (fire and forget).
    Event,
}

impl Write {
    /// The API verb and resource (all of cert-manager's kinds, Secrets and Events are
    /// `Other` to APF's bootstrap FlowSchemas).
    pub fn api(self) -> (Verb, Resource) {
        match self {
            Write::CreateKeySecret | Write::CreateSecret | Write::CreateCr | Write::Event => {
                (Verb::Create, Resource::Other)
            }
            _ => (Verb::Update, Resource::Other),
        }
    }
    /// Whether it carries the CertificateRequest's resourceVersion (can conflict).
    fn request_status(self) -> bool {
        matches!(self, Write::Approve | Write::CrResult { .. })
    }
    /// Whether it carries the Certificate's resourceVersion (can conflict).
    fn certificate_status(self) -> bool {
        matches!(
            self,
            Write::Readiness { .. }
                | Write::Issuing
                | Write::NextKeyName
                | Write::IssuingDone { .. }
        )
    }
}

/// The reply the owner hands back for a submitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallReply {
    /// The apiserver served it (the write lands now; it may still conflict).
    Done,
    /// HTTP 429 with `Retry-After`.
    TooManyRequests {
        /// Seconds.
        retry_after_s: u32,
    },
    /// Any other failure.
    Error,
}

/// What the controllers ask of the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertOutput {
    /// Send this call through the apiserver now (its token is taken); answer with
    /// [`CertControllers::reply`] and `tag`.
    Submit {
        /// The call's tag.
        tag: u64,
        /// The Certificate.
        cert: u32,
        /// What it writes.
        write: Write,
    },
    /// Sign certificate `cert`'s request; answer with [`CertControllers::signed`].
    Sign {
        /// The Certificate.
        cert: u32,
    },
    /// Certificate `cert` became Ready.
    Ready {
        /// The Certificate.
        cert: u32,
    },
}

/// The component's own timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertEvent {
    /// The component's index (cluster).
    pub index: u32,
    /// What is due.
    pub timer: CertTimer,
}

/// A timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertTimer {
    /// A Certificate is created.
    Create {
        /// The Certificate.
        cert: u32,
    },
    /// A write of `cert` is in the informer cache: every controller is told.
    Informer {
        /// The Certificate.
        cert: u32,
    },
    /// A controller's delayed requeues may be due.
    Requeue {
        /// The controller.
        ctl: u8,
    },
    /// A call's token is due: submit it.
    Send {
        /// The call's tag.
        tag: u64,
    },
    /// A 429's Retry-After is over: take a new token, then send.
    Retry {
        /// The call's tag.
        tag: u64,
    },
}

impl TraceEvent for CertEvent {
    fn kind(&self) -> u32 {
        match self.timer {
            CertTimer::Create { .. } => 0x500,
            CertTimer::Informer { .. } => 0x501,
            CertTimer::Requeue { .. } => 0x502,
            CertTimer::Send { .. } => 0x503,
            CertTimer::Retry { .. } => 0x504,
        }
    }
    fn entity(&self) -> u64 {
        let e = match self.timer {
            CertTimer::Create { cert } | CertTimer::Informer { cert } => cert as u64,
            CertTimer::Requeue { ctl } => ctl as u64,
            CertTimer::Send { tag } | CertTimer::Retry { tag } => tag,
        };
        ((self.index as u64) << 48) ^ e
    }
}

#[derive(Debug, Clone)]
struct Job {
    ctl: Ctl,
    cert: u32,
    /// The resourceVersion read at the start of the reconcile.
    read_rv: u64,
    /// The CR's resourceVersion read then.
    read_cr_rv: u64,
    /// The writes left, in order.
    writes: VecDeque<Write>,
    /// Retries of the current call (client-go).
    retries: u32,
}

struct Controller {
    queue: WorkQueue,
    limiter: RateLimiter,
    busy: u32,
    wake_at: Option<SimTime>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertStats {
    /// API calls sent (first tries).
    pub calls: u64,
    /// Status writes (Certificate or CertificateRequest) refused with 409 Conflict.
    pub conflicts: u64,
    /// Calls that failed after the client's retries.
    pub errors: u64,
    /// 429s seen.
    pub rejected: u64,
    /// Reconciles.
    pub reconciles: u64,
    /// Issuances that failed (CR Failed).
    pub failed_issuances: u64,
}

/// The Certificate controllers of one cert-manager process.
pub struct CertControllers {
    index: u32,
    config: CertControllersConfig,
    client: RestClient,
    ctls: Vec<Controller>,
    /// Server state per Certificate.
    server: Vec<CertView>,
    /// Created yet.
    created: Vec<bool>,
    /// The informer's cache: versions and when each is visible (monotonic).
    history: Vec<Vec<(SimTime, CertView)>>,
    ready_at: Vec<Option<SimTime>>,
    jobs: Vec<Option<Job>>,
    free_jobs: Vec<u32>,
    job_gen: Vec<u32>,
    stats: CertStats,
}

impl CertControllers {
    /// `count` Certificates, none created yet.
    pub fn new(index: u32, config: CertControllersConfig, count: u32) -> CertControllers {
        let ctls = CONTROLLERS
            .iter()
            .map(|c| Controller {
                queue: WorkQueue::new(),
                limiter: if c.is_cr_controller() {
                    RateLimiter::item_exponential(config.cr_queue_base, config.cr_queue_max)
                } else {
                    RateLimiter::item_exponential(config.queue_base, config.queue_max)
                },
                busy: 0,
                wake_at: None,
            })
            .collect();
        let n = count as usize;
        CertControllers {
            index,
            config,
            client: RestClient::client_go(config.qps, config.burst),
            ctls,
            server: vec![CertView::default(); n],
            created: vec![false; n],
            history: vec![Vec::new(); n],
            ready_at: vec![None; n],
            jobs: Vec::new(),
            free_jobs: Vec::new(),
            job_gen: Vec::new(),
            stats: CertStats::default(),
        }
    }

    /// Schedules the creation of Certificate `cert` at `at`.
    pub fn create_at(&mut self, cert: u32, at: SimTime, sched: &mut impl Schedule<CertEvent>) {
        sched.schedule_at(
            at,
            CertEvent {
                index: self.index,
                timer: CertTimer::Create { cert },
            },
        );
    }

    /// The configuration.
    pub fn config(&self) -> &CertControllersConfig {
        &self.config
    }
    /// The counters.
    pub fn stats(&self) -> CertStats {
        self.stats
    }
    /// The shared REST client.
    pub fn client(&self) -> &RestClient {
        &self.client
    }
    /// Certificates.
    pub fn count(&self) -> usize {
        self.server.len()
    }
    /// Certificates Ready.
    pub fn ready(&self) -> usize {
        self.ready_at.iter().filter(|r| r.is_some()).count()
    }
    /// When the last Certificate became Ready (all Ready), else `None`.
    pub fn all_ready_at(&self) -> Option<SimTime> {
        if self.ready_at.iter().all(|r| r.is_some()) {
            self.ready_at.iter().flatten().max().copied()
        } else {
            None
        }
    }
    /// When each Certificate became Ready.
    pub fn ready_times(&self) -> &[Option<SimTime>] {
        &self.ready_at
    }
    /// Server state of `cert`.
    pub fn server_view(&self, cert: u32) -> CertView {
        self.server[cert as usize]
    }

    fn cache_view(&self, cert: u32, now: SimTime) -> CertView {
        self.history[cert as usize]
            .iter()
            .rev()
            .find(|(t, _)| *t <= now)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }

    /// Handles one of the component's timers.
    pub fn handle(
        &mut self,
        ev: CertEvent,
        sched: &mut impl Schedule<CertEvent>,
        out: &mut Vec<CertOutput>,
    ) {
        let now = sched.now();
        match ev.timer {
            CertTimer::Create { cert } => {
                self.created[cert as usize] = true;
                self.server[cert as usize].rv = 1;
                self.published(cert, now, sched);
            }
            CertTimer::Informer { cert } => {
                for c in CONTROLLERS {
                    self.ctls[c.index()].queue.add(cert as u64);
                }
            }
            CertTimer::Requeue { ctl } => {
                let c = &mut self.ctls[ctl as usize];
                if c.wake_at == Some(now) {
                    c.wake_at = None;
                }
                c.queue.promote_due(now);
            }
            CertTimer::Retry { tag } => {
                if self.job(tag).is_some() {
                    let at = self.client.acquire_retry(now, None).expect("no deadline");
                    sched.schedule_at(
                        at,
                        CertEvent {
                            index: self.index,
                            timer: CertTimer::Send { tag },
                        },
                    );
                }
            }
            CertTimer::Send { tag } => {
                if let Some(job) = self.job(tag) {
                    let write = job.writes[0];
                    let cert = job.cert;
                    out.push(CertOutput::Submit { tag, cert, write });
                }
            }
        }
        self.dispatch(sched, out);
    }

    /// A write landed on the server: it becomes visible to the informers later.
    fn published(&mut self, cert: u32, now: SimTime, sched: &mut impl Schedule<CertEvent>) {
        let at = now + self.config.informer_delay;
        self.history[cert as usize].push((at, self.server[cert as usize]));
        sched.schedule_at(
            at,
            CertEvent {
                index: self.index,
                timer: CertTimer::Informer { cert },
            },
        );
    }

    fn job(&self, tag: u64) -> Option<&Job> {
        let slot = tag as u32 as usize;
        if self.job_gen.get(slot).copied() != Some((tag >> 32) as u32) {
            return None;
        }
        self.jobs.get(slot).and_then(|j| j.as_ref())
    }

    /// Controller `ctl` takes a worker for a reconcile of `cert` that read `v` and has
    /// `writes` to make: its job's tag.
    fn start_job(&mut self, ctl: Ctl, cert: u32, v: &CertView, writes: VecDeque<Write>) -> u64 {
        self.ctls[ctl.index()].busy += 1;
        self.alloc_job(Job {
            ctl,
            cert,
            read_rv: v.rv,
            read_cr_rv: v.cr_rv,
            writes,
            retries: 0,
        })
    }

    fn alloc_job(&mut self, job: Job) -> u64 {
        let slot = match self.free_jobs.pop() {
            Some(s) => s as usize,
            None => {
                self.jobs.push(None);
                self.job_gen.push(0);
                self.jobs.len() - 1
            }
        };
        self.job_gen[slot] = self.job_gen[slot].wrapping_add(1);
        self.jobs[slot] = Some(job);
        ((self.job_gen[slot] as u64) << 32) | slot as u64
    }

    /// What controller `ctl` writes for a Certificate it reads as `v` (its reconcile).
    pub fn plan(&self, ctl: Ctl, v: &CertView, now: SimTime) -> Vec<Write> {
        match ctl {
            Ctl::Readiness => {
                let want = v.secret && !v.issuing;
                if !v.ready_set || v.ready != want {
                    vec![Write::Readiness { ready: want }]
                } else {
                    vec![]
                }
            }
            Ctl::Trigger => {
                if v.issuing || v.secret {
                    return vec![];
                }
                if let Some(t) = v.last_failure {
                    let d = failed_issuance_backoff(
                        v.failed_attempts,
                        self.config.min_backoff,
                        self.config.max_backoff,
                    );
                    if now < t + d {
                        return vec![];
                    }
                }
                vec![Write::Issuing, Write::Event]
            }
            Ctl::KeyManager => {
                if !v.issuing || v.next_key_name {
                    vec![]
                } else if !v.next_key_secret {
                    vec![Write::CreateKeySecret, Write::Event]
                } else {
                    vec![Write::NextKeyName]
                }
            }
            Ctl::RequestManager => {
                if v.issuing && v.next_key_name && v.cr.is_none() {
                    vec![Write::CreateCr, Write::Event]
                } else {
                    vec![]
                }
            }
            Ctl::Approver => match v.cr {
                Some(cr) if !cr.approved => vec![Write::Approve],
                _ => vec![],
            },
            Ctl::IssuerCa => vec![],
            Ctl::Issuing => match v.cr {
                Some(cr) if v.issuing && cr.failed => vec![Write::IssuingDone { ok: false }],
                Some(cr) if v.issuing && cr.signed && !v.secret => {
                    vec![
                        Write::CreateSecret,
                        Write::IssuingDone { ok: true },
                        Write::Event,
                    ]
                }
                Some(cr) if v.issuing && cr.signed => vec![Write::IssuingDone { ok: true }],
                _ => vec![],
            },
        }
    }

    fn dispatch(&mut self, sched: &mut impl Schedule<CertEvent>, out: &mut Vec<CertOutput>) {
        let now = sched.now();
        for c in CONTROLLERS {
            let ci = c.index();
            self.ctls[ci].queue.promote_due(now);
            while self.ctls[ci].busy < self.config.workers {
                let Some(item) = self.ctls[ci].queue.get() else {
                    break;
                };
                let cert = item as u32;
                self.stats.reconciles += 1;
                let v = self.cache_view(cert, now);
                if c == Ctl::IssuerCa {
                    // The CA issuer signs in-process; the owner answers `signed`.
                    match v.cr {
                        Some(cr) if cr.approved && !cr.signed && !cr.failed => {
                            self.start_job(c, cert, &v, VecDeque::new());
                            out.push(CertOutput::Sign { cert });
                        }
                        _ => self.finish(c, cert, true, now, sched),
                    }
                    continue;
                }
                let writes: VecDeque<Write> = self.plan(c, &v, now).into();
                if writes.is_empty() {
                    self.finish(c, cert, true, now, sched);
                    continue;
                }
                let tag = self.start_job(c, cert, &v, writes);
                self.send_next(tag, sched);
            }
            // Keep a wake for the controller's delayed requeues.
            if let Some(due) = self.ctls[ci].queue.next_due() {
                if self.ctls[ci].wake_at.is_none_or(|w| w > due) {
                    self.ctls[ci].wake_at = Some(due);
                    sched.schedule_at(
                        due,
                        CertEvent {
                            index: self.index,
                            timer: CertTimer::Requeue { ctl: ci as u8 },
                        },
                    );
                }
            }
        }
    }

    /// Takes a token for the job's next call and schedules its send.
    fn send_next(&mut self, tag: u64, sched: &mut impl Schedule<CertEvent>) {
        let now = sched.now();
        let at = self.client.acquire(now, false, None).expect("no deadline");
        self.stats.calls += 1;
        sched.schedule_at(
            at,
            CertEvent {
                index: self.index,
                timer: CertTimer::Send { tag },
            },
        );
    }

    /// Ends a reconcile: `Forget` on success, `AddRateLimited` on error.
    fn finish(
        &mut self,
        c: Ctl,
        cert: u32,
        ok: bool,
        now: SimTime,
        _sched: &mut impl Schedule<CertEvent>,
    ) {
        let ctl = &mut self.ctls[c.index()];
        ctl.queue.done(cert as u64);
        if ok {
            ctl.limiter.forget(cert as u64);
        } else {
            let d = ctl.limiter.when(cert as u64, now);
            ctl.queue.add_after(cert as u64, now, d);
        }
    }

    fn end_job(&mut self, tag: u64, ok: bool, sched: &mut impl Schedule<CertEvent>) {
        let slot = tag as u32 as usize;
        let Some(job) = self.jobs[slot].take() else {
            return;
        };
        self.free_jobs.push(slot as u32);
        self.ctls[job.ctl.index()].busy -= 1;
        let now = sched.now();
        self.finish(job.ctl, job.cert, ok, now, sched);
    }

    /// The owner's answer to [`CertOutput::Sign`] (`ok`: signed; else the CR is Failed).
    pub fn signed(
        &mut self,
        cert: u32,
        ok: bool,
        sched: &mut impl Schedule<CertEvent>,
        out: &mut Vec<CertOutput>,
    ) {
        let slot = self.jobs.iter().position(|j| {
            j.as_ref()
                .is_some_and(|j| j.ctl == Ctl::IssuerCa && j.cert == cert && j.writes.is_empty())
        });
        let Some(slot) = slot else { return };
        let tag = ((self.job_gen[slot] as u64) << 32) | slot as u64;
        if let Some(j) = self.jobs[slot].as_mut() {
            j.writes.push_back(Write::CrResult { ok });
            if ok {
                j.writes.push_back(Write::Event);
            }
        }
        self.send_next(tag, sched);
        self.dispatch(sched, out);
    }

    /// The owner's answer for call `tag`.
    pub fn reply(
        &mut self,
        tag: u64,
        reply: CallReply,
        sched: &mut impl Schedule<CertEvent>,
        out: &mut Vec<CertOutput>,
    ) {
        let now = sched.now();
        let Some(job) = self.job(tag).cloned() else {
            return;
        };
        match reply {
            CallReply::TooManyRequests { retry_after_s } => {
                self.stats.rejected += 1;
                match self.client.on_reply(
                    now,
                    job.retries,
                    Reply::TooManyRequests { retry_after_s },
                ) {
                    RetryDecision::RetryAt { at, retry } => {
                        let slot = tag as u32 as usize;
                        if let Some(j) = self.jobs[slot].as_mut() {
                            j.retries = retry;
                        }
                        sched.schedule_at(
                            at,
                            CertEvent {
                                index: self.index,
                                timer: CertTimer::Retry { tag },
                            },
                        );
                    }
                    RetryDecision::Return => {
                        self.stats.errors += 1;
                        self.end_job(tag, false, sched);
                    }
                }
            }
            CallReply::Error => {
                self.stats.errors += 1;
                self.end_job(tag, false, sched);
            }
            CallReply::Done => {
                let write = job.writes[0];
                let applied = self.apply(
                    job.cert,
                    (job.read_rv, job.read_cr_rv),
                    write,
                    now,
                    sched,
                    out,
                );
                if !applied {
                    // 409: "re-queuing item due to optimistic locking on resource".
                    self.stats.conflicts += 1;
                    self.end_job(tag, false, sched);
                } else {
                    let slot = tag as u32 as usize;
                    let more = {
                        let j = self.jobs[slot].as_mut().expect("live job");
                        j.writes.pop_front();
                        j.retries = 0;
                        // The next write of this reconcile carries the new versions.
                        j.read_rv = self.server[job.cert as usize].rv;
                        j.read_cr_rv = self.server[job.cert as usize].cr_rv;
                        !j.writes.is_empty()
                    };
                    if more {
                        self.send_next(tag, sched);
                    } else {
                        self.end_job(tag, true, sched);
                    }
                }
            }
        }
        self.dispatch(sched, out);
    }

    /// Lands `write` on the server; `false` on a resourceVersion conflict.
    fn apply(
        &mut self,
        cert: u32,
        (read_rv, read_cr_rv): (u64, u64),
        write: Write,
        now: SimTime,
        sched: &mut impl Schedule<CertEvent>,
        out: &mut Vec<CertOutput>,
    ) -> bool {
        let i = cert as usize;
        if write.certificate_status() && self.server[i].rv != read_rv {
            return false;
        }
        if write.request_status() && self.server[i].cr_rv != read_cr_rv {
            return false;
        }
        let s = &mut self.server[i];
        match write {
            Write::Event => return true,
            Write::Readiness { ready } => {
                s.ready_set = true;
                s.ready = ready;
                if ready && self.ready_at[i].is_none() {
                    self.ready_at[i] = Some(now);
                    out.push(CertOutput::Ready { cert });
                }
            }
            Write::Issuing => s.issuing = true,
            Write::CreateKeySecret => s.next_key_secret = true,
            Write::NextKeyName => s.next_key_name = true,
            Write::CreateCr => s.cr = Some(CrView::default()),
            Write::Approve => {
                if let Some(cr) = s.cr.as_mut() {
                    cr.approved = true;
                }
            }
            Write::CrResult { ok } => {
                if let Some(cr) = s.cr.as_mut() {
                    cr.signed = ok;
                    cr.failed = !ok;
                }
            }
            Write::CreateSecret => s.secret = true,
            Write::IssuingDone { ok } => {
                s.issuing = false;
                s.next_key_name = false;
                s.next_key_secret = false;
                if !ok {
                    s.last_failure = Some(now);
                    s.failed_attempts += 1;
                    s.cr = None;
                    self.stats.failed_issuances += 1;
                } else {
                    s.last_failure = None;
                    s.failed_attempts = 0;
                }
            }
        }
        if write.certificate_status() {
            s.rv += 1;
        }
        if write.request_status() || write == Write::CreateCr {
            s.cr_rv += 1;
        }
        self.published(cert, now, sched);
        if let Some(t) = self.server[i].last_failure {
            // trigger's scheduled recheck at the end of the back-off
            // (`scheduleRecheckOfCertificateIfRequired`).
            if matches!(write, Write::IssuingDone { ok: false }) {
                let d = failed_issuance_backoff(
                    self.server[i].failed_attempts,
                    self.config.min_backoff,
                    self.config.max_backoff,
                );
                let ti = Ctl::Trigger.index();
                self.ctls[ti]
                    .queue
                    .add_after(cert as u64, now, (t + d) - now);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
