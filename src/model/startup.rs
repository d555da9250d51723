//! istiod's start-up in the fleet: a replica whose container started is NotReady (no
//! endpoint of the `istiod` Service, so the injection webhook cannot reach it) until its
//! informers have listed their objects through its client-go limiter and the cluster's
//! apiserver, and the kubelet's next readiness probe sees `/ready` answer 200
//! ([`crate::control::informers`] has the sources).
//!
//! - Container start: after `istiod.startup_base` (process start before the informers
//!   run; unconfirmed) every informer sends its LIST.
//! - A LIST that the apiserver rejects (429) is retried by client-go (Retry-After, at most
//!   10 times, [`crate::control::client`]); when those run out the reflector relists
//!   after its back-off (0.8 s doubling to 30 s, jitter 1.0; stream
//!   `istiod-reflector/{cluster}`).
//! - `PILOT_CERT_PROVIDER=k8s.io/<signer>`: before the informers, the replica's own
//!   serving certificate goes through the CSR path like a workload's (one chiron flow on
//!   its client); no certificate within the flow's wait and the process exits, to be
//!   restarted after the kubelet's back-off (CrashLoopBackOff).
//! - All listed: Ready at the next probe (initial delay 1 s, period
//!   `istiod.readiness_period`); the probes before it are counted
//!   (`istiod_probe_failures`).

use crate::control::informers::{istiod_informers, ClusterShape, ReadinessProbe};
use crate::engine::{Context, SimTime};
use crate::scenario::ClusterSpec;

use super::event::Event;
use super::fleet::Fleet;
use super::state::{PodPhase, PodRef};

/// `informer` of [`Event::IstiodList`] meaning every informer.
pub const ALL: u32 = u32::MAX;

/// The readiness probe of a cluster's istiod container (istio-discovery chart:
/// initialDelaySeconds 1, periodSeconds from `istiod.readiness_period`).
pub fn probe(spec: &ClusterSpec) -> ReadinessProbe {
    ReadinessProbe {
        initial_delay: SimTime::from_secs(1),
        period: spec.istiod.readiness_period,
    }
}

/// What istiod's informers list in `cluster` now.
fn shape(f: &Fleet, cluster: u32) -> ClusterShape {
    let s = f.cluster(cluster).objects();
    let (old, new) = s.node_counts();
    ClusterShape {
        pods: u64::from(s.desired_pods()),
        nodes: u64::from(old + new),
        workloads: s.workloads.len().saturating_sub(1) as u64,
    }
}

/// istiod's container started (the pod is Warming): it starts its process, then lists.
pub fn begin(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let n = istiod_informers(shape(f, cluster)).len();
    f.cluster_mut(cluster)
        .istiod_mut()
        .add_starting(pod.slot, pod.gen, &spec.istiod, now, n);
    ctx.schedule_in(
        spec.istiod.startup_base,
        Event::IstiodList {
            cluster,
            pod,
            informer: ALL,
        },
    );
}

/// The process is up (`ALL`) or a reflector's back-off ended: send the LIST(s).
pub fn on_list_due(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    informer: u32,
) {
    if !starting(f, cluster, pod) {
        return;
    }
    let needs_cert = informer == ALL
        && f.cluster_mut(cluster)
            .istiod_mut()
            .starting_mut(pod.slot, pod.gen)
            .is_some_and(|r| !r.serving_cert);
    if needs_cert {
        // `NewServer` signs istiod's serving certificate before the informers start.
        super::ra::start_serving_cert_flow(f, ctx, cluster, pod);
        return;
    }
    let lists = istiod_informers(shape(f, cluster));
    for (i, list) in lists.into_iter().enumerate() {
        if informer == ALL || informer as usize == i {
            super::ra::issue_informer_list(f, ctx, cluster, pod, i as u32, list);
        }
    }
}

/// Whether `pod` is a current, warming istiod replica still starting.
fn starting(f: &mut Fleet, cluster: u32, pod: PodRef) -> bool {
    let s = f.cluster(cluster).objects();
    s.is_current(pod)
        && s.pods[pod.slot as usize].phase == PodPhase::Warming
        && f.cluster_mut(cluster)
            .istiod_mut()
            .starting_mut(pod.slot, pod.gen)
            .is_some()
}

/// The replica's serving-certificate flow (its CSR `csr`) ended: with the certificate the informers
/// start; without it `NewServer` fails and the process exits
/// (`failed to create discovery service: failed generating key and cert by kubernetes`).
pub fn on_serving_cert(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    ok: bool,
    csr: Option<u64>,
) {
    if !starting(f, cluster, pod) {
        return;
    }
    if !ok {
        super::pods::on_istiod_exit(f, ctx, cluster, pod, csr);
        return;
    }
    if let Some(r) = f
        .cluster_mut(cluster)
        .istiod_mut()
        .starting_mut(pod.slot, pod.gen)
    {
        r.serving_cert = true;
    }
    on_list_due(f, ctx, cluster, pod, ALL);
}

/// An informer's LIST came back: when all have, Ready at the next readiness probe.
pub fn on_listed(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef, i: u32) {
    let now = ctx.now();
    let probe = probe(f.spec(cluster));
    if !starting(f, cluster, pod) {
        return;
    }
    let Some(r) = f
        .cluster_mut(cluster)
        .istiod_mut()
        .starting_mut(pod.slot, pod.gen)
    else {
        return;
    };
    if r.sync.listed(i as usize) {
        let (ready_at, _) = probe.first_success(r.started, now);
        ctx.schedule_at(ready_at, Event::PodReady { cluster, pod });
    }
}

/// An informer's LIST failed after client-go's retries: its reflector backs off.
pub fn on_list_failed(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    informer: u32,
) {
    let now = ctx.now();
    if !starting(f, cluster, pod) {
        return;
    }
    let ist = f.cluster_mut(cluster).istiod_mut();
    let unit = ist.reflector_unit();
    let Some(r) = ist.starting_mut(pod.slot, pod.gen) else {
        return;
    };
    let at = r.sync.failed(informer as usize, now, unit);
    ctx.schedule_at(
        at,
        Event::IstiodList {
            cluster,
            pod,
            informer,
        },
    );
}

/// The replica in `pod` turns Ready now: its failed probes are counted.
pub fn on_ready(f: &mut Fleet, cluster: u32, pod: PodRef, now: SimTime) {
    let probe = probe(f.spec(cluster));
    let ist = f.cluster_mut(cluster).istiod_mut();
    let started = ist.starting_mut(pod.slot, pod.gen).map(|r| r.started);
    if let Some(started) = started {
        let n = probe.failures_until(started, now).saturating_sub(1);
        ist.note_probe_failures(n);
        // The kubelet's Unhealthy events of this start, now that its end is known.
        super::journal::istiod_starting(f, started, cluster, pod.slot, now, probe.period);
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::SimTime;
    use crate::model::tests::herd;
    use crate::scenario::{MaxUnavailable, Scenario};

    /// One cluster, one node group holding istiod (1 replica, no PDB) and 200 injected
    /// pods, all drained at once: istiod restarts while the ReplicaSets recreate pods.
    fn one_group(qps: f64, burst: u32) -> Scenario {
        let mut sc = herd(1, 100.0);
        sc.horizon = SimTime::from_secs(3600);
        sc.cas[0].config.usl.sigma = 0.0;
        sc.cas[0].config.usl.kappa = 0.0;
        sc.cas[0].config.failed_object_slowdown = 0.0;
        let c = &mut sc.clusters[0];
        c.node_groups.remove(0);
        c.istiod.node_group = None;
        c.istiod.pdb = false;
        c.istiod.client_qps = qps;
        c.istiod.client_burst = burst;
        c.node_groups[0].nodes = 6;
        c.node_groups[0].max_pods = 58;
        c.node_groups[0].max_unavailable = MaxUnavailable::Count(6);
        c.workloads.truncate(2);
        for w in &mut c.workloads {
            w.node_group = None;
        }
        sc
    }

    #[test]
    fn no_ready_istiod_fails_the_webhook_and_the_replicaset_retries_until_created() {
        let s = super::super::run(&one_group(80.0, 160), 1, "x").summary;
        let f = &s.clusters[0].figures;
        assert!(f.webhook_failures > 0, "{}", s.to_json());
        assert!(f.istiod_unready_s > 0.0, "{}", s.to_json());
        // startup_base 10 s, then the LISTs: the probes at 1, 4, 7 and 10 s fail.
        assert!(f.istiod_probe_failures >= 4, "{}", s.to_json());
        assert!(
            f.recovered,
            "the requeues create every pod once istiod is Ready"
        );
    }

    /// Every ReplicaSet of a cluster requeues through one controller-wide bucket
    /// (client-go `DefaultControllerRateLimiter`: the later of 5 ms x 2^n per item and
    /// 10 qps / 100 burst overall). With the bucket at one token per 50 s the failed
    /// creates are retried less often and the pods come back later.
    #[test]
    fn replicaset_requeues_wait_for_the_controllers_shared_bucket() {
        let base = super::super::run(&one_group(80.0, 160), 1, "x").summary;
        let mut sc = one_group(80.0, 160);
        sc.clusters[0].kubernetes.requeue_rate_per_s = 0.02;
        sc.clusters[0].kubernetes.requeue_burst = 1;
        let slow = super::super::run(&sc, 1, "x").summary;
        let (a, b) = (base.fleet.webhook_failures, slow.fleet.webhook_failures);
        assert!(b < a, "webhook failures {a} at 10 qps, {b} at 0.02 qps");
        let at = |s: &crate::metrics::Summary| s.fleet.time_to_recover_s.unwrap_or(f64::MAX);
        assert!(
            at(&slow) > at(&base) + 30.0,
            "recovered at {} s and {} s",
            at(&base),
            at(&slow)
        );
    }

    #[test]
    fn informer_lists_wait_for_the_replicas_client_limiter() {
        // 19 LISTs: at 80 QPS / burst 160 all go at once; at 1 QPS / burst 1 the last
        // waits 18 s for its token, so the replica is Ready ~6 probes (3 s) later.
        let fast = super::super::run(&one_group(80.0, 160), 1, "x").summary;
        let slow = super::super::run(&one_group(1.0, 1), 1, "x").summary;
        let (a, b) = (
            fast.clusters[0].figures.istiod_probe_failures,
            slow.clusters[0].figures.istiod_probe_failures,
        );
        assert!(b >= a + 5, "probe failures {a} at 80 QPS, {b} at 1 QPS");
    }
}
