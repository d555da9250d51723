//! cert-manager Certificates in a cluster (`[cluster.X.certificates.NAME]`): the
//! controllers of [`crate::control::certificates`] driven through the cluster's
//! kube-apiserver (their calls compete in APF with istiod's and the pods' traffic) and,
//! for the CertificateRequests, the cluster's CA.
//!
//! - One cert-manager process per cluster with Certificates, identity
//!   `system:serviceaccount:cert-manager:cert-manager` (APF: `workload-low`, like the CSR
//!   signer).
//! - A CertificateRequest is signed by the cluster's CA (`issuer` = the cluster's `ca`)
//!   through the fleet's issuer ([`super::fleet`]'s `issuer_sign`): an issuer error marks
//!   the CR Failed, and trigger backs off (1 h first). Without `issuer`, cert-manager's
//!   in-process `ca` issuer signs at once.
//! - Summary: Certificates Ready, and when the last became Ready (after its set's
//!   `created_at`).

use crate::control::apiserver::{Admission, ApiOutcome, ApiRequest, ClientId, Identity};
use crate::control::certificates::{
    CallReply, CertControllers, CertControllersConfig, CertEvent, CertOutput,
};
use crate::control::signer::{IssuerReply, JobRef};
use crate::engine::{Context, SimTime};
use crate::scenario::Scenario;

use super::event::Event;
use super::fleet::{Cluster, Fleet};
use super::ra;

/// The tag bit of the Certificate controllers' API calls (istiod's and the signer's
/// tags never set it).
pub const TAG_BIT: u64 = 1 << 63;

/// The `JobRef::worker` of a Certificate's signing at the fleet's issuer.
pub const SIGN_WORKER: u32 = u32::MAX - 1;

/// One cluster's cert-manager.
pub struct ClusterCerts {
    ctl: CertControllers,
    client: ClientId,
    /// The cluster's CA signs (else in-process).
    external: bool,
    /// (first Certificate, count, created_at) per set.
    sets: Vec<(u32, u32, SimTime)>,
    out: Vec<CertOutput>,
}

impl ClusterCerts {
    /// The controllers.
    pub fn controllers(&self) -> &CertControllers {
        &self.ctl
    }

    /// Certificates Ready.
    pub fn ready(&self) -> u64 {
        self.ctl.ready() as u64
    }

    /// Seconds from the earliest `created_at` until the last Certificate was Ready.
    pub fn all_ready_s(&self) -> Option<f64> {
        let first = self.sets.iter().map(|s| s.2).min()?;
        self.ctl.all_ready_at().map(|t| (t - first).as_secs_f64())
    }
}

/// Whether `tag` is a Certificate controller's call.
pub fn owns(tag: u64) -> bool {
    tag & TAG_BIT != 0
}

/// The controllers of every cluster with Certificates.
pub fn build(sc: &Scenario, clusters: &mut [Cluster]) -> Vec<Option<ClusterCerts>> {
    sc.clusters
        .iter()
        .zip(clusters.iter_mut())
        .enumerate()
        .map(|(i, (spec, c))| {
            if spec.certificates.is_empty() {
                return None;
            }
            let mut sets = Vec::new();
            let mut n = 0u32;
            for s in &spec.certificates {
                sets.push((n, s.count, s.created_at));
                n += s.count;
            }
            let config = CertControllersConfig {
                informer_delay: spec.signer.informer_delay,
                ..CertControllersConfig::default()
            };
            let client = c
                .cert_mut()
                .api_mut()
                .register_client(&Identity::service_account("cert-manager", "cert-manager"));
            Some(ClusterCerts {
                ctl: CertControllers::new(i as u32, config, n),
                client,
                external: spec.certificates.iter().any(|s| s.issuer.is_some()),
                sets,
                out: Vec::new(),
            })
        })
        .collect()
}

/// Schedules every Certificate's creation.
pub fn start(f: &mut Fleet, ctx: &mut Context<Event>) {
    for c in 0..f.cluster_count() {
        if let Some(cc) = f.certs_mut(c) {
            for &(first, count, at) in &cc.sets {
                for cert in first..first + count {
                    cc.ctl.create_at(cert, at, ctx);
                }
            }
        }
    }
}

/// The controllers' own event.
pub fn on_event(f: &mut Fleet, ctx: &mut Context<Event>, ev: CertEvent) {
    drive(f, ctx, ev.index, |cc, ctx, out| cc.ctl.handle(ev, ctx, out));
}

/// A call's reply left the apiserver.
pub fn on_api_done(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, tag: u64) {
    let t = tag & !TAG_BIT;
    drive(f, ctx, cluster, |cc, ctx, out| {
        cc.ctl.reply(t, CallReply::Done, ctx, out)
    });
}

/// A 429 for a call.
pub fn on_rejected(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    tag: u64,
    retry_after_s: u32,
) {
    let t = tag & !TAG_BIT;
    drive(f, ctx, cluster, |cc, ctx, out| {
        cc.ctl
            .reply(t, CallReply::TooManyRequests { retry_after_s }, ctx, out)
    });
}

/// The fleet's issuer answered a signing.
pub fn on_signed(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    cert: u32,
    reply: IssuerReply,
) {
    let ok = matches!(reply, IssuerReply::Ok | IssuerReply::Issued(_));
    drive(f, ctx, cluster, |cc, ctx, out| {
        cc.ctl.signed(cert, ok, ctx, out)
    });
}

fn drive(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    step: impl FnOnce(&mut ClusterCerts, &mut Context<Event>, &mut Vec<CertOutput>),
) {
    let Some(cc) = f.certs_mut(cluster) else {
        return;
    };
    let mut out = std::mem::take(&mut cc.out);
    step(cc, ctx, &mut out);
    route(f, ctx, cluster, &mut out);
    if let Some(cc) = f.certs_mut(cluster) {
        cc.out = out;
    }
}

fn route(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, out: &mut Vec<CertOutput>) {
    // Outputs may produce more outputs (a synchronous signing); drain until empty.
    while !out.is_empty() {
        let batch: Vec<CertOutput> = std::mem::take(out);
        for o in batch {
            match o {
                CertOutput::Submit { tag, write, .. } => {
                    let Some(cc) = f.certs(cluster) else { return };
                    let (verb, resource) = write.api();
                    let req = ApiRequest::new(cc.client, verb, resource).in_namespace(1);
                    let tag = tag | TAG_BIT;
                    let mut api_out: Vec<ApiOutcome> = Vec::new();
                    let adm = f.cluster_mut(cluster).cert_mut().api_mut().submit(
                        &req,
                        tag,
                        ctx,
                        &mut api_out,
                    );
                    match adm {
                        Admission::Admitted { done_at } => {
                            ctx.schedule_at(done_at, Event::ApiDone { cluster, tag })
                        }
                        Admission::Queued => {}
                        Admission::Rejected { retry_after_s, .. } => {
                            api_out.push(ApiOutcome::Rejected {
                                tag,
                                retry_after_s,
                                reason: crate::control::apiserver::RejectReason::QueueFull,
                            })
                        }
                    }
                    ra::route_api_outcomes(f, ctx, cluster, &mut api_out);
                }
                CertOutput::Sign { cert } => {
                    let external = f.certs(cluster).is_some_and(|c| c.external);
                    if external {
                        let job = JobRef {
                            worker: SIGN_WORKER,
                            gen: cert,
                        };
                        f.issuer_sign(ctx, cluster, job, (1u64 << 40) ^ cert as u64);
                    } else if let Some(cc) = f.certs_mut(cluster) {
                        // cert-manager's `ca` issuer signs in-process.
                        cc.ctl.signed(cert, true, ctx, out);
                    }
                }
                CertOutput::Ready { .. } => {}
            }
        }
    }
}
