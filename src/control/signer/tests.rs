use super::*;
use crate::control::issuer::{AwsPcaAccount, AwsPcaConfig, AwsRetryConfig};
use crate::engine::rng::named_stream;
use crate::engine::{Context, Limits, Model, Simulation};

const S: fn(u64) -> SimTime = SimTime::from_secs;
const MS: fn(u64) -> SimTime = SimTime::from_millis;

/// How the test world's issuer answers `Sign`.
#[derive(Debug, Clone, Copy)]
enum SignBehaviour {
    /// Signs after this long.
    Latency(SimTime),
    /// Fails.
    Fail,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Signer(SignerEvent),
    Informer(InformerEvent),
    ApiDone(JobRef, ApiCall),
    IssuerDone(JobRef, IssuerReply),
    /// Fire-and-forget requests land (counted).
    Sent(ApiCall),
    Delete(u64),
}

impl From<SignerEvent> for Ev {
    fn from(e: SignerEvent) -> Self {
        Ev::Signer(e)
    }
}

impl TraceEvent for Ev {
    fn kind(&self) -> u32 {
        match self {
            Ev::Signer(e) => e.kind(),
            _ => 9,
        }
    }
    fn entity(&self) -> u64 {
        0
    }
}

/// A tiny cluster: an object store, an apiserver answering after 1 ms, an issuer.
struct World {
    signer: Signer,
    objects: BTreeMap<u64, ObjectView>,
    sign: SignBehaviour,
    pca: AwsPcaAccount,
    issued: BTreeMap<u64, PcaCertificate>,
    /// Fail every `SetArnAnnotation` with a conflict.
    arn_conflicts: bool,
    out: Vec<SignerOutput>,
    log: Vec<(SimTime, SignerOutput)>,
    sent: Vec<(SimTime, ApiOp)>,
}

impl World {
    fn new(config: SignerConfig) -> World {
        World {
            signer: Signer::new(0, config, named_stream(1, "signer/test")),
            objects: BTreeMap::new(),
            sign: SignBehaviour::Latency(SimTime::ZERO),
            pca: AwsPcaAccount::new(AwsPcaConfig::default()),
            issued: BTreeMap::new(),
            arn_conflicts: false,
            out: Vec::new(),
            log: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn signed_times(&self) -> Vec<SimTime> {
        self.log
            .iter()
            .filter(|(_, o)| matches!(o, SignerOutput::Signed { wasted: false, .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn count(&self, f: impl Fn(&SignerOutput) -> bool) -> usize {
        self.log.iter().filter(|(_, o)| f(o)).count()
    }
}

impl Model for World {
    type Event = Ev;
    fn handle(&mut self, e: Ev, ctx: &mut Context<Ev>) {
        let now = ctx.now();
        match e {
            Ev::Signer(e) => self.signer.handle(e.kind, ctx, &mut self.out),
            Ev::Informer(ev) => self.signer.informer(ev, ctx, &mut self.out),
            Ev::Delete(key) => {
                if self.objects.remove(&key).is_some() {
                    ctx.schedule_in(SimTime::ZERO, Ev::Informer(InformerEvent::Delete { key }));
                }
            }
            Ev::Sent(call) => self.sent.push((now, call.op)),
            Ev::ApiDone(job, call) => {
                self.sent.push((now, call.op));
                let reply = match (call.op, self.objects.get_mut(&call.object)) {
                    (ApiOp::LeaseUpdate | ApiOp::SubjectAccessReview, _) => ApiReply::Ok,
                    (ApiOp::SetArnAnnotation, Some(_)) if self.arn_conflicts => ApiReply::Conflict,
                    (_, None) => ApiReply::NotFound,
                    (_, Some(v)) if call.base_version.is_some_and(|b| b != v.version) => {
                        ApiReply::Conflict
                    }
                    (op, Some(v)) => {
                        v.version += 1;
                        match op {
                            ApiOp::WriteCertificate => v.has_certificate = true,
                            ApiOp::MarkFailed => v.failed = true,
                            ApiOp::SetArnAnnotation => {
                                v.arn = self.issued.get(&call.object).copied()
                            }
                            _ => {}
                        }
                        let view = *v;
                        // The informer delivers the write back to the controller.
                        ctx.schedule_in(
                            MS(1),
                            Ev::Informer(InformerEvent::Upsert {
                                key: call.object,
                                view,
                            }),
                        );
                        ApiReply::Ok
                    }
                };
                self.signer.api_reply(job, reply, ctx, &mut self.out);
            }
            Ev::IssuerDone(job, reply) => self.signer.issuer_reply(job, reply, ctx, &mut self.out),
        }
        let outs: Vec<SignerOutput> = self.out.drain(..).collect();
        for o in outs {
            match o {
                SignerOutput::Api { job, call, send_at } => {
                    let at = send_at + MS(1);
                    match job {
                        Some(job) => ctx.schedule_at(at, Ev::ApiDone(job, call)),
                        None => ctx.schedule_at(at, Ev::Sent(call)),
                    }
                }
                SignerOutput::Issuer { job, call } => {
                    let api = self.pca.config().api_latency;
                    let (at, reply) = match call {
                        IssuerCall::Sign { .. } => match self.sign {
                            SignBehaviour::Latency(d) => (now + d, IssuerReply::Ok),
                            SignBehaviour::Fail => (now, IssuerReply::Error),
                        },
                        IssuerCall::PcaIssue { key } => {
                            match self.pca.issue_certificate(now, key) {
                                Ok(c) => {
                                    self.issued.insert(key, c);
                                    (now + api, IssuerReply::Issued(c))
                                }
                                Err(_) => (now + api, IssuerReply::Error),
                            }
                        }
                        IssuerCall::PcaGet { cert, .. } => {
                            match self.pca.get_certificate(now, cert) {
                                Ok(()) => (now + api, IssuerReply::Ok),
                                Err(
                                    crate::control::issuer::PcaError::RequestInProgressException,
                                ) => (now + api, IssuerReply::InProgress),
                                Err(_) => (now + api, IssuerReply::Error),
                            }
                        }
                    };
                    ctx.schedule_at(at, Ev::IssuerDone(job, reply));
                }
                other => self.log.push((now, other)),
            }
        }
    }
}

fn approved() -> ObjectView {
    ObjectView {
        approved: true,
        ..ObjectView::default()
    }
}

/// `n` objects created at `at` with `view`.
fn seed(sim: &mut Simulation<World>, n: u64, at: SimTime, view: ObjectView) {
    for key in 1..=n {
        sim.model.objects.insert(key, view);
        sim.schedule_at(at, Ev::Informer(InformerEvent::Upsert { key, view }));
    }
}

fn cert_manager(issuer: BuiltinIssuer, leader_election: bool) -> SignerConfig {
    SignerConfig::CertManager(CertManagerConfig {
        issuer,
        leader_election,
        ..CertManagerConfig::default()
    })
}

#[test]
fn cert_manager_is_bounded_by_its_client_qps() {
    // 1000 approved CSRs, an instant CA: UpdateStatus + the CertificateIssued event =
    // 2 tokens per CSR from one 20 QPS / 50 burst bucket: ~10 CSRs/s.
    let mut sim = Simulation::new(World::new(cert_manager(BuiltinIssuer::Ca, false)));
    seed(&mut sim, 1000, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(400)));
    let t = sim.model.signed_times();
    assert_eq!(t.len(), 1000);
    let last = t.last().unwrap().as_secs_f64();
    // (2000 - 50) tokens at 20/s = 97.5 s.
    assert!((96.0..100.0).contains(&last), "{last}");
    let rate = (900.0 - 100.0) / (t[899].as_secs_f64() - t[99].as_secs_f64());
    assert!((9.5..10.5).contains(&rate), "{rate}/s");
}

#[test]
fn cert_manager_is_bounded_by_its_workers_when_the_issuer_is_slow() {
    let mut w = World::new(cert_manager(BuiltinIssuer::Vault, false));
    w.sign = SignBehaviour::Latency(S(1));
    let mut sim = Simulation::new(w);
    seed(&mut sim, 1000, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(400)));
    let t = sim.model.signed_times();
    assert_eq!(t.len(), 1000);
    let rate = 800.0 / (t[899].as_secs_f64() - t[99].as_secs_f64());
    // 5 workers x 1 sign/s (+ 1 ms for the write): just under 5/s.
    assert!((4.9..5.01).contains(&rate), "{rate}/s");
    assert_eq!(sim.model.signer.busy_workers(), 0);
}

#[test]
fn gone_objects_are_skipped_at_no_cost() {
    let mut w = World::new(cert_manager(BuiltinIssuer::Ca, false));
    w.sign = SignBehaviour::Latency(S(1));
    let mut sim = Simulation::new(w);
    seed(&mut sim, 20, SimTime::ZERO, approved());
    // 5 workers take 1..5; 6..20 wait and are deleted at 0.5 s.
    for key in 6..=20 {
        sim.schedule_at(MS(500), Ev::Delete(key));
    }
    sim.run(Limits::horizon(S(100)));
    let m = &sim.model;
    assert_eq!(m.signed_times().len(), 5);
    assert_eq!(m.signer.skipped_gone(), 15);
    assert_eq!(m.signer.issuer_calls(), 5, "no signing for gone objects");
}

#[test]
fn a_csr_deleted_while_it_is_signed_is_wasted_work() {
    let mut w = World::new(cert_manager(BuiltinIssuer::Vault, false));
    w.sign = SignBehaviour::Latency(S(2));
    let mut sim = Simulation::new(w);
    seed(&mut sim, 1, SimTime::ZERO, approved());
    // istiod gives up and deletes it while Vault signs.
    sim.schedule_at(S(1), Ev::Delete(1));
    sim.run(Limits::horizon(S(100)));
    let m = &sim.model;
    assert_eq!(m.signer.wasted_signings(), 1);
    assert_eq!(m.signer.signed(), 0);
    assert_eq!(
        m.count(|o| matches!(o, SignerOutput::Signed { wasted: true, .. })),
        1
    );
    assert!(
        m.count(|o| matches!(
            o,
            SignerOutput::Event {
                reason: "ErrorUpdate",
                ..
            }
        )) == 1
    );
    // The requeued passes (the informer's delete, then the rate-limited requeue) find
    // it gone.
    assert_eq!(m.signer.skipped_gone(), 2);
}

#[test]
fn vault_error_marks_the_csr_failed_for_good() {
    let mut w = World::new(cert_manager(BuiltinIssuer::Vault, false));
    w.sign = SignBehaviour::Fail;
    let mut sim = Simulation::new(w);
    seed(&mut sim, 3, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(1000)));
    let m = &sim.model;
    assert_eq!(m.signer.marked_failed(), 3);
    assert_eq!(m.signer.issuer_calls(), 3, "terminal: no retry");
    assert!(m.objects.values().all(|v| v.failed));
    assert_eq!(
        m.count(|o| matches!(
            o,
            SignerOutput::Event {
                warning: true,
                reason: "ErrorSigning",
                ..
            }
        )),
        3
    );
}

#[test]
fn cert_manager_waits_for_approval_and_skips_a_not_ready_issuer() {
    let mut sim = Simulation::new(World::new(cert_manager(BuiltinIssuer::Ca, false)));
    seed(&mut sim, 2, SimTime::ZERO, ObjectView::default());
    sim.run(Limits::horizon(S(10)));
    assert_eq!(
        sim.model.count(|o| matches!(
            o,
            SignerOutput::Event {
                reason: "WaitingApproval",
                ..
            }
        )),
        2
    );
    assert_eq!(sim.model.signer.issuer_calls(), 0);
    // Issuer not ready: an event, no requeue, no signing.
    let mut sim = Simulation::new(World::new(cert_manager(BuiltinIssuer::Ca, false)));
    sim.model.signer.set_issuer_ready(false);
    seed(&mut sim, 1, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(1000)));
    assert_eq!(sim.model.signer.reconciles(), 1);
    assert_eq!(
        sim.model.count(|o| matches!(
            o,
            SignerOutput::Event {
                reason: "IssuerNotReady",
                ..
            }
        )),
        1
    );
}

#[test]
fn updates_while_queued_reconcile_once() {
    let mut w = World::new(cert_manager(BuiltinIssuer::Ca, false));
    w.sign = SignBehaviour::Latency(S(10));
    let mut sim = Simulation::new(w);
    // 5 workers busy with 1..5; key 6 updated 10 times while it waits.
    seed(&mut sim, 6, SimTime::ZERO, approved());
    for i in 1..=10 {
        sim.schedule_at(
            MS(i),
            Ev::Informer(InformerEvent::Upsert {
                key: 6,
                view: approved(),
            }),
        );
    }
    sim.run(Limits::horizon(S(25)));
    // 6 reconciles to sign + 6 no-op passes for the status updates coming back.
    assert!(
        sim.model.signer.reconciles() <= 12,
        "{}",
        sim.model.signer.reconciles()
    );
    assert_eq!(sim.model.signed_times().len(), 6);
}

#[test]
fn event_flood_starves_the_lease_renewal_and_cert_manager_loses_leadership() {
    // 3000 CSRs arrive before istiod approves them: each reconcile posts a
    // WaitingApproval event through the one 20 QPS bucket: a backlog of ~150 s, so the
    // renewal (40 s deadline) is refused by the limiter and leadership is lost.
    let mut sim = Simulation::new(World::new(cert_manager(BuiltinIssuer::Ca, true)));
    sim.init(|m, ctx| m.signer.start(ctx));
    seed(&mut sim, 3000, S(1), ObjectView::default());
    sim.run(Limits::horizon(S(200)));
    let lost: Vec<SimTime> = sim
        .model
        .log
        .iter()
        .filter(|(_, o)| matches!(o, SignerOutput::LeaderElectionLost))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(lost.len(), 1);
    // The first renewal try at 15 s is refused; so are 30 s and 45 s; the deadline
    // (15 s + 40 s) passes at 55 s.
    assert_eq!(lost[0], S(55));
    // Without the flood it renews every 15 s.
    let mut sim = Simulation::new(World::new(cert_manager(BuiltinIssuer::Ca, true)));
    sim.init(|m, ctx| m.signer.start(ctx));
    sim.run(Limits::horizon(S(151)));
    assert_eq!(sim.model.signer.lease_renewals(), 10);
}

#[test]
fn controller_runtime_signer_emits_the_csr_has_been_signed() {
    let cfg = SignerConfig::ControllerRuntime(ControllerRuntimeConfig::default());
    let mut sim = Simulation::new(World::new(cfg));
    seed(&mut sim, 3, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(10)));
    let m = &sim.model;
    assert_eq!(m.signed_times().len(), 3);
    assert_eq!(
        m.count(|o| matches!(
            o,
            SignerOutput::Event {
                warning: false,
                reason: "Signed",
                message: "The CSR has been signed",
                ..
            }
        )),
        3
    );
}

#[test]
fn controller_runtime_signer_requeues_on_issuer_error_without_failed() {
    let cfg = SignerConfig::ControllerRuntime(ControllerRuntimeConfig::default());
    let mut w = World::new(cfg);
    w.sign = SignBehaviour::Fail;
    let mut sim = Simulation::new(w);
    seed(&mut sim, 1, SimTime::ZERO, approved());
    sim.run(Limits::horizon(SimTime::from_millis(1300)));
    let m = &sim.model;
    assert_eq!(m.signer.marked_failed(), 0);
    assert!(!m.objects[&1].failed);
    // 5 ms x 2^n back-off: attempts at 0, 5, 15, 35, 75, 155, 315, 635, 1275 ms.
    assert_eq!(m.signer.issuer_calls(), 9);
    // The assumption, when on, marks it Failed.
    let cfg = SignerConfig::ControllerRuntime(ControllerRuntimeConfig {
        mark_failed_on_issuer_error: true,
        ..ControllerRuntimeConfig::default()
    });
    let mut w = World::new(cfg);
    w.sign = SignBehaviour::Fail;
    let mut sim = Simulation::new(w);
    seed(&mut sim, 1, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(10)));
    assert_eq!(sim.model.signer.marked_failed(), 1);
}

#[test]
fn aws_pca_issuer_issues_then_polls_until_the_certificate_is_ready() {
    let cfg = SignerConfig::AwsPcaIssuer(AwsPcaIssuerConfig::default());
    let mut sim = Simulation::new(World::new(cfg));
    seed(&mut sim, 1, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(60)));
    let m = &sim.model;
    assert_eq!(m.signed_times().len(), 1);
    assert_eq!(m.pca.issued(), 1);
    // GetCertificate before the 500 ms issue latency was in progress at least once.
    assert!(m.pca.in_progress() >= 1);
    assert!(m.objects[&1].has_certificate);
    assert_eq!(
        m.count(|o| matches!(
            o,
            SignerOutput::Event {
                reason: "Issued",
                ..
            }
        )),
        1
    );
}

#[test]
fn aws_pca_throttling_after_sdk_retries_fails_the_request_for_good() {
    let cfg = SignerConfig::AwsPcaIssuer(AwsPcaIssuerConfig::default());
    let mut w = World::new(cfg);
    w.pca = AwsPcaAccount::new(AwsPcaConfig {
        issue_rate_per_s: 0.01,
        issue_burst: 1,
        ..AwsPcaConfig::default()
    });
    let mut sim = Simulation::new(w);
    seed(&mut sim, 2, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(600)));
    let m = &sim.model;
    // The first CR gets the one token; the second is throttled 3 times (2 SDK retries)
    // and then marked Failed.
    assert_eq!(m.signer.marked_failed(), 1);
    assert!(m.objects[&2].failed);
    assert_eq!(m.pca.issue_throttled(), 3);
    // The second CR's two retries cost 10 for good; successes give back a little.
    assert!(m.signer.sdk().unwrap().quota() < 500);
    assert!(m.signer.sdk().unwrap().retries() >= 2);
}

#[test]
fn lost_arn_annotation_reissues() {
    // Conflicts on the annotation update: every pass calls IssueCertificate again (the
    // idempotency token keeps it to one certificate within 5 min).
    let cfg = SignerConfig::AwsPcaIssuer(AwsPcaIssuerConfig::default());
    let mut w = World::new(cfg);
    w.arn_conflicts = true;
    let mut sim = Simulation::new(w);
    seed(&mut sim, 1, SimTime::ZERO, approved());
    sim.run(Limits::horizon(S(2)));
    let m = &sim.model;
    assert!(m.pca.issue_requests() >= 5, "{}", m.pca.issue_requests());
    assert_eq!(m.pca.issued(), 1);
}

#[test]
fn istio_csr_flow_calls_and_results() {
    let mut f = IstioCsrFlow::new();
    assert_eq!(f.start(), IstioCsrAction::TokenReview);
    assert_eq!(f.next(true, CrState::Pending), IstioCsrAction::CreateCr);
    assert_eq!(f.next(true, CrState::Pending), IstioCsrAction::WatchCr);
    assert_eq!(f.next(true, CrState::Pending), IstioCsrAction::GetCr);
    assert_eq!(f.next(true, CrState::Pending), IstioCsrAction::AwaitCr);
    assert_eq!(
        f.next(true, CrState::Signed),
        IstioCsrAction::Done {
            result: Ok(()),
            delete_cr: true
        }
    );
    // A Failed CR fails fast and is deleted; the agent retries with a new CR.
    let mut f = IstioCsrFlow::new();
    f.start();
    f.next(true, CrState::Pending);
    f.next(true, CrState::Pending);
    assert_eq!(f.next(true, CrState::Pending), IstioCsrAction::GetCr);
    assert_eq!(
        f.next(true, CrState::Failed),
        IstioCsrAction::Done {
            result: Err("failed to sign certificate request"),
            delete_cr: true
        }
    );
    // A failed Create: nothing to delete.
    let mut f = IstioCsrFlow::new();
    f.start();
    assert_eq!(f.next(true, CrState::Pending), IstioCsrAction::CreateCr);
    assert_eq!(
        f.next(false, CrState::Pending),
        IstioCsrAction::Done {
            result: Err("failed to sign certificate request"),
            delete_cr: false
        }
    );
}

#[test]
fn empty_retry_quota_turns_in_progress_into_failed() {
    // With a spent retry quota the SDK returns its quota error instead of
    // RequestInProgressException: the issuer no longer sees "in progress" and marks
    // the CR Failed. With quota left it polls until the certificate is ready.
    let run_with = |quota_tokens| {
        let cfg = SignerConfig::AwsPcaIssuer(AwsPcaIssuerConfig {
            sdk: AwsRetryConfig {
                quota_tokens,
                ..AwsRetryConfig::default()
            },
            ..AwsPcaIssuerConfig::default()
        });
        let mut w = World::new(cfg);
        w.pca = AwsPcaAccount::new(AwsPcaConfig {
            issue_latency: S(5),
            ..AwsPcaConfig::default()
        });
        let mut sim = Simulation::new(w);
        seed(&mut sim, 1, SimTime::ZERO, approved());
        sim.run(Limits::horizon(S(120)));
        (
            sim.model.signer.marked_failed(),
            sim.model.signed_times().len(),
        )
    };
    assert_eq!(run_with(0), (1, 0));
    assert_eq!(run_with(500), (0, 1));
}
