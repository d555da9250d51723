//! The fleet's issuers (`[ca.NAME]`), shared by the clusters that name them, and how a
//! signer's `Sign` reaches them.
//!
//! - `usl`: the load-tested CA ([`crate::ca::CertificateAuthority`], the fleet's `cas`):
//!   the request joins its queue; it never fails (no deadline is passed).
//! - `vault`: `/sign` latency drawn per request; a rate-limit quota (if set) refuses at
//!   once (HTTP 429 -> an issuer error).
//! - `google-cas`: `CreateCertificate` against the CA's tier quota and the location's
//!   quota (shared by the CAs naming the location); over quota: an error.
//! - `aws-pca`: a CSR signer in front of PCA signs with `IssueCertificate` and then polls
//!   `GetCertificate` every `poll_interval` (*unconfirmed*) until the certificate is
//!   there; a `ThrottlingException` on either call is an issuer error. Quotas are per
//!   account (shared by every CA naming it). The CSR signers here have no SDK retryer.
//!   aws-privateca-issuer (behind istio-csr) calls `IssueCertificate` and, on a later
//!   reconcile, `GetCertificate` itself ([`Fleet::pca_issue`], [`Fleet::pca_get`]); its
//!   SDK retryer (in [`crate::control::signer`]) retries throttling and
//!   `RequestInProgressException`.

use crate::ca::OnTimeout;
use crate::control::issuer::{
    AwsPcaAccount, CasLocation, GoogleCasCa, PcaCertificate, PcaError, Vault,
};
use crate::control::signer::{IssuerReply, JobRef};
use crate::engine::{Context, SimTime};
use crate::scenario::{IssuerKind, Scenario};

use super::super::event::Event;
use super::super::ra;
use super::super::streams::Role;
use super::Fleet;

/// One issuer's live state.
#[derive(Debug, Clone)]
enum IssuerState {
    Usl,
    Pca { account: usize },
    Cas { ca: GoogleCasCa, location: usize },
    Vault(Vault),
}

/// The fleet's issuers.
#[derive(Debug, Clone)]
pub struct Issuers {
    kinds: Vec<IssuerState>,
    pca: Vec<AwsPcaAccount>,
    locations: Vec<CasLocation>,
    /// USL requests: (cluster, job) by request id.
    jobs: Vec<Option<(u32, JobRef)>>,
    free_jobs: Vec<u32>,
}

impl Issuers {
    /// The issuers of `sc`.
    pub fn new(sc: &Scenario, seed: u64) -> Issuers {
        let mut pca: Vec<Option<AwsPcaAccount>> = vec![None; sc.pca_accounts.len()];
        let locations = vec![CasLocation::new(); sc.cas_locations.len()];
        let kinds = sc
            .cas
            .iter()
            .map(|ca| match &ca.kind {
                IssuerKind::Usl => IssuerState::Usl,
                IssuerKind::AwsPca {
                    account, config, ..
                } => {
                    // The first CA naming the account sets its quotas.
                    pca[*account].get_or_insert_with(|| AwsPcaAccount::new(*config));
                    IssuerState::Pca { account: *account }
                }
                IssuerKind::GoogleCas {
                    tier,
                    location,
                    latency,
                    ..
                } => IssuerState::Cas {
                    ca: GoogleCasCa::new(*tier, *latency),
                    location: *location,
                },
                IssuerKind::Vault(config) => IssuerState::Vault(Vault::new(
                    *config,
                    Role::CaService.stream(seed, &[&ca.name]),
                )),
            })
            .collect();
        Issuers {
            kinds,
            pca: pca
                .into_iter()
                .map(|a| a.expect("every account named"))
                .collect(),
            locations,
            jobs: Vec::new(),
            free_jobs: Vec::new(),
        }
    }

    fn alloc_job(&mut self, cluster: u32, job: JobRef) -> u64 {
        let slot = match self.free_jobs.pop() {
            Some(s) => s,
            None => {
                self.jobs.push(None);
                (self.jobs.len() - 1) as u32
            }
        };
        self.jobs[slot as usize] = Some((cluster, job));
        slot as u64
    }

    /// The USL request `id` was served: its job, freed.
    fn take_job(&mut self, id: u64) -> Option<(u32, JobRef)> {
        let j = self.jobs.get_mut(id as usize)?.take();
        if j.is_some() {
            self.free_jobs.push(id as u32);
        }
        j
    }

    /// `IssueCertificate` calls throttled, over the accounts.
    pub fn pca_throttled(&self) -> u64 {
        self.pca
            .iter()
            .map(|a| a.issue_throttled() + a.get_throttled())
            .sum()
    }
}

impl Fleet<'_> {
    /// A signer of `cluster` asks its issuer to sign (job `job`, object `key`).
    pub fn issuer_sign(&mut self, ctx: &mut Context<Event>, cluster: u32, job: JobRef, key: u64) {
        let now = ctx.now();
        let Some(ca) = self.spec(cluster).ca else {
            issuer_done(ctx, now, cluster, job, IssuerReply::Error);
            return;
        };
        let issuers = &mut self.issuers;
        match &mut issuers.kinds[ca] {
            IssuerState::Usl => {
                let id = issuers.alloc_job(cluster, job);
                self.cas[ca].submit(id, None, OnTimeout::Keep, ctx);
                self.note_ca_load(ca);
            }
            IssuerState::Vault(v) => {
                reply_when_done(ctx, now, cluster, job, v.sign(now).map_err(drop));
            }
            IssuerState::Cas { ca: c, location } => {
                let done = c.create_certificate(now, &mut issuers.locations[*location]);
                reply_when_done(ctx, now, cluster, job, done.map_err(drop));
            }
            IssuerState::Pca { account } => {
                let account = *account;
                self.clusters[cluster as usize].cert_mut().count_pca_issue();
                let acct = &mut self.issuers.pca[account];
                let lat = acct.config().api_latency;
                let token = idempotency_token(cluster, key);
                match acct.issue_certificate(now, token) {
                    Ok(cert) => {
                        let poll = self.pca_poll_interval(ca);
                        ctx.schedule_at(now + lat + poll, Event::PcaPoll { cluster, job, cert });
                    }
                    Err(_) => issuer_done(ctx, now + lat, cluster, job, IssuerReply::Error),
                }
            }
        }
    }

    /// The AWS PCA account of `cluster`'s CA, if its CA is an AWS Private CA.
    fn pca_account(&self, cluster: u32) -> Option<usize> {
        match self.issuers.kinds[self.spec(cluster).ca?] {
            IssuerState::Pca { account } => Some(account),
            _ => None,
        }
    }

    fn pca_poll_interval(&self, ca: usize) -> SimTime {
        match &self.sc.cas[ca].kind {
            IssuerKind::AwsPca { poll_interval, .. } => *poll_interval,
            _ => SimTime::from_secs(1),
        }
    }

    /// A CSR signer's `GetCertificate` poll.
    pub fn on_pca_poll(
        &mut self,
        ctx: &mut Context<Event>,
        cluster: u32,
        job: JobRef,
        cert: PcaCertificate,
    ) {
        let now = ctx.now();
        let Some(ca) = self.spec(cluster).ca else {
            return;
        };
        let IssuerState::Pca { account } = self.issuers.kinds[ca] else {
            return;
        };
        let poll = self.pca_poll_interval(ca);
        let acct = &mut self.issuers.pca[account];
        let lat = acct.config().api_latency;
        match acct.get_certificate(now, cert) {
            Ok(()) => issuer_done(ctx, now + lat, cluster, job, IssuerReply::Ok),
            Err(PcaError::RequestInProgressException) => {
                ctx.schedule_at(now + lat + poll, Event::PcaPoll { cluster, job, cert })
            }
            Err(PcaError::ThrottlingException) => {
                issuer_done(ctx, now + lat, cluster, job, IssuerReply::Error)
            }
        }
    }

    /// aws-privateca-issuer's `IssueCertificate` for CR `key` (idempotency token: the
    /// CR's namespace/name, `pkg/aws/pca.go` `idempotencyToken`). The SDK's answer
    /// comes after one API round trip; returns what PCA started, if it accepted.
    pub fn pca_issue(
        &mut self,
        ctx: &mut Context<Event>,
        cluster: u32,
        job: JobRef,
        key: u64,
    ) -> Option<PcaCertificate> {
        let now = ctx.now();
        let Some(account) = self.pca_account(cluster) else {
            issuer_done(ctx, now, cluster, job, IssuerReply::Error);
            return None;
        };
        let acct = &mut self.issuers.pca[account];
        let lat = acct.config().api_latency;
        let token = idempotency_token(cluster, key);
        let (reply, cert) = match acct.issue_certificate(now, token) {
            Ok(cert) => (IssuerReply::Issued(cert), Some(cert)),
            Err(_) => (IssuerReply::Error, None),
        };
        issuer_done(ctx, now + lat, cluster, job, reply);
        cert
    }

    /// aws-privateca-issuer's `GetCertificate` of `cert`.
    pub fn pca_get(
        &mut self,
        ctx: &mut Context<Event>,
        cluster: u32,
        job: JobRef,
        cert: PcaCertificate,
    ) {
        let now = ctx.now();
        let acct = self.pca_account(cluster);
        let reply = match acct {
            None => IssuerReply::Error,
            Some(a) => match self.issuers.pca[a].get_certificate(now, cert) {
                Ok(()) => IssuerReply::Ok,
                Err(PcaError::RequestInProgressException) => IssuerReply::InProgress,
                Err(PcaError::ThrottlingException) => IssuerReply::Error,
            },
        };
        let lat = acct.map_or(SimTime::ZERO, |a| self.issuers.pca[a].config().api_latency);
        issuer_done(ctx, now + lat, cluster, job, reply);
    }

    /// A USL CA served request `id`.
    pub(super) fn usl_served(&mut self, ctx: &mut Context<Event>, id: u64) {
        if let Some((cluster, job)) = self.issuers.take_job(id) {
            ra::on_issuer_done(self, ctx, cluster, job, IssuerReply::Ok);
        }
    }
}

/// The `IssueCertificate` idempotency token of object `key` (a CSR or a CR) of
/// `cluster`: one per object.
fn idempotency_token(cluster: u32, key: u64) -> u64 {
    ((cluster as u64) << 40) ^ key
}

/// A synchronous issuer's answer: at its completion time, or at once on an error.
fn reply_when_done(
    ctx: &mut Context<Event>,
    now: SimTime,
    cluster: u32,
    job: JobRef,
    done: Result<SimTime, ()>,
) {
    let (at, reply) = match done {
        Ok(t) => (t, IssuerReply::Ok),
        Err(()) => (now, IssuerReply::Error),
    };
    issuer_done(ctx, at, cluster, job, reply);
}

/// The issuer's answer to job `job` of `cluster`, at `at`.
fn issuer_done(
    ctx: &mut Context<Event>,
    at: SimTime,
    cluster: u32,
    job: JobRef,
    reply: IssuerReply,
) {
    ctx.schedule_at(
        at,
        Event::IssuerDone {
            cluster,
            job,
            reply,
        },
    );
}
