//! Pod life: the ReplicaSet controller (slow start, requeue back-off), the injection
//! webhook, the scheduler, container start, readiness and the kubelet's
//! CrashLoopBackOff.

use crate::control::kubelet::{KubeletConfig, ProxyKillPath, RestartBackoff, SyncDecision};
use crate::engine::{Context, SimTime};
use crate::scenario::{ClusterSpec, FailurePolicy, KubernetesSpec, WorkloadSpec};

use super::event::Event;
use super::fleet::{Cluster, Fleet};
use super::state::{PodPhase, PodRef, Workload, NONE};
use super::{certs, nodes};

/// Most pods one ReplicaSet sync creates (`burstReplicas`).
const MAX_CREATES_PER_SYNC: u32 = 500;

/// The istiod workload of a cluster (workload 0).
pub fn istiod_workload(spec: &ClusterSpec, replicas: u32) -> Workload {
    Workload {
        desired: replicas,
        held: 0,
        active: 0,
        ready: 0,
        pdb_max_unavailable: istiod_pdb(spec, replicas),
        injected: false,
        container_start: SimTime::from_secs(5),
        ready_delay: SimTime::ZERO,
        node_group: spec.istiod.node_group.map(|g| g as u32),
        batch_outstanding: 0,
        batch_failed: false,
        next_batch: 1,
        requeues: 0,
        sync_scheduled: false,
    }
}

/// istiod's PDB: minAvailable 1 when more than one replica (Istio >= 1.28).
pub fn istiod_pdb(spec: &ClusterSpec, replicas: u32) -> Option<u32> {
    (spec.istiod.pdb && replicas > 1).then(|| replicas - 1)
}

/// An application workload.
pub fn workload_from_spec(w: &WorkloadSpec) -> Workload {
    Workload {
        desired: w.replicas,
        held: 0,
        active: 0,
        ready: 0,
        pdb_max_unavailable: w.pdb_max_unavailable,
        injected: w.injected,
        container_start: w.container_start,
        ready_delay: w.ready_delay,
        node_group: w.node_group.map(|g| g as u32),
        batch_outstanding: 0,
        batch_failed: false,
        next_batch: 1,
        requeues: 0,
        sync_scheduled: false,
    }
}

/// The ReplicaSet's requeue delay after `failures` failed syncs: 5 ms x 2^n, capped.
pub fn requeue_delay(k: &KubernetesSpec, failures: u32) -> SimTime {
    k.requeue_base
        .mul_f64(2f64.powi(failures.min(60) as i32))
        .min(k.requeue_max)
}

/// The kubelet's configuration of a cluster.
pub fn kubelet_config(k: &KubernetesSpec) -> KubeletConfig {
    KubeletConfig {
        version: k.version,
        reduced_crashloop_backoff: k.reduced_crashloop_backoff,
        max_container_restart_period: k.max_container_restart_period,
        ..KubeletConfig::default()
    }
}

/// What kills a proxy of this cluster that has no certificate.
pub fn kill_path(spec: &ClusterSpec) -> ProxyKillPath {
    let probe = spec
        .agent
        .startup_probe
        .unwrap_or_else(|| spec.istiod.version.has_sidecar_startup_probe());
    match ProxyKillPath::for_release(
        spec.istiod.version,
        spec.agent.hold_application_until_proxy_starts,
        probe,
        false,
    ) {
        // An explicit `agent.startup_probe = true` on a release without the probe, and
        // `startup_probe_limit`, set the probe's budget.
        ProxyKillPath::Never if probe => ProxyKillPath::StartupProbe {
            after: spec.agent.startup_probe_limit,
        },
        ProxyKillPath::StartupProbe { .. } => ProxyKillPath::StartupProbe {
            after: spec.agent.startup_probe_limit,
        },
        p => p,
    }
}

/// How long after its agent starts a proxy without a certificate is killed, if it is.
fn kill_after(spec: &ClusterSpec) -> Option<SimTime> {
    match kill_path(spec) {
        ProxyKillPath::StartupProbe { after } | ProxyKillPath::PostStartTimeout { after } => {
            Some(after)
        }
        ProxyKillPath::Never => None,
    }
}

/// ReplicaSet requeue: the scheduled sync is due.
pub fn on_replica_sync(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, workload: u32) {
    f.cluster_mut(cluster).objects_mut().workloads[workload as usize].sync_scheduled = false;
    sync_workload(f, ctx, cluster, workload)
}

/// ReplicaSet sync: create missing pods in slow-start batches (1, 2, 4, ...). Injected
/// pods go through the webhook; a batch with a failure stops the sync and requeues it
/// with back-off.
pub fn sync_workload(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, workload: u32) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let s = c.objects_mut();
    let w = &s.workloads[workload as usize];
    if w.batch_outstanding > 0 || w.sync_scheduled {
        return; // the batch in flight or the requeue will sync again
    }
    let target = w.desired.saturating_sub(w.held);
    let missing = target.saturating_sub(w.active).min(MAX_CREATES_PER_SYNC);
    if missing == 0 {
        return;
    }
    if !w.injected {
        // No webhook call: every create succeeds at once.
        for _ in 0..missing {
            let pod = s.new_pod(now, workload, false);
            s.set_phase(now, pod.slot, PodPhase::Pending);
            s.enqueue_unscheduled(pod.slot);
        }
        schedule_pending(f, ctx, cluster);
        return;
    }
    let batch = w.next_batch.min(missing);
    let w = &mut s.workloads[workload as usize];
    w.batch_outstanding = batch;
    w.batch_failed = false;
    for _ in 0..batch {
        let pod = c.objects_mut().new_pod(now, workload, true);
        // The webhook: istiod's injection queue, or an error without a ready replica.
        let (at, ok) = c.istiod_mut().inject(now, &spec.webhook);
        ctx.schedule_at(
            at,
            Event::WebhookDone {
                cluster,
                workload,
                pod,
                ok,
            },
        );
    }
}

/// The webhook answered for one pod of a slow-start batch.
pub fn on_webhook_done(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    workload: u32,
    pod: PodRef,
    ok: bool,
) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let s = f.cluster_mut(cluster).objects_mut();
    let alive = s.is_current(pod) && s.pods[pod.slot as usize].phase == PodPhase::Creating;
    if !ok {
        f.cluster_mut(cluster).counters_mut().webhook_failures += 1;
        super::journal::webhook_failed(f, now, cluster, workload);
    }
    let s = f.cluster_mut(cluster).objects_mut();
    let created = ok || spec.webhook.failure_policy == FailurePolicy::Ignore;
    if alive {
        if created {
            // With failurePolicy Ignore a failed call admits the pod without a sidecar.
            s.pods[pod.slot as usize].injected = ok;
            s.set_phase(now, pod.slot, PodPhase::Pending);
            s.enqueue_unscheduled(pod.slot);
        } else {
            s.release(now, pod.slot);
        }
    }
    let w = &mut s.workloads[workload as usize];
    w.batch_outstanding -= 1;
    if !created {
        w.batch_failed = true;
    }
    if alive && created {
        schedule_pending(f, ctx, cluster);
    }
    let w = &mut f.cluster_mut(cluster).objects_mut().workloads[workload as usize];
    if w.batch_outstanding > 0 {
        return;
    }
    if w.batch_failed {
        // Requeue (`AddRateLimited`) with the later of the per-item exponential back-off
        // and the controller's shared bucket, which every requeue draws from (client-go
        // `MaxOfRateLimiter` asks both); the next sync starts at batch 1.
        let per_item = now + requeue_delay(&spec.kubernetes, w.requeues);
        w.requeues += 1;
        w.next_batch = 1;
        w.sync_scheduled = true;
        let c = f.cluster_mut(cluster);
        let shared = c
            .replicaset_retries_mut()
            .reserve(now, 1, None)
            .unwrap_or(now);
        ctx.schedule_at(
            per_item.max(shared),
            Event::ReplicaSync { cluster, workload },
        );
    } else {
        w.requeues = 0;
        w.next_batch = w.next_batch.saturating_mul(2);
        sync_workload(f, ctx, cluster, workload);
        let w = &mut f.cluster_mut(cluster).objects_mut().workloads[workload as usize];
        if w.batch_outstanding == 0 {
            w.next_batch = 1; // the sync is over; the next one starts slow again
        }
    }
}

/// Binds unscheduled pods to schedulable nodes, most free room first. Each queue
/// (pods pinned to a node group, then pods that may go anywhere) is served first-in
/// first-out until its head finds no room.
pub fn schedule_pending(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let now = ctx.now();
    let s = f.cluster_mut(cluster).objects_mut();
    let queues = s.unscheduled.len();
    for q in 0..queues {
        let group = (q + 1 < queues).then_some(q as u32);
        while let Some(&(slot, gen)) = s.unscheduled[q].front() {
            let p = &s.pods[slot as usize];
            if p.gen != gen || p.phase != PodPhase::Pending {
                s.unscheduled[q].pop_front();
                continue;
            }
            let Some(node) = s.best_node(group) else {
                break;
            };
            s.unscheduled[q].pop_front();
            s.bind(slot, node);
            s.set_phase(now, slot, PodPhase::Starting);
            let w = s.pods[slot as usize].workload;
            let delay = s.workloads[w as usize].container_start;
            ctx.schedule_in(
                delay,
                Event::ContainersStarted {
                    cluster,
                    pod: PodRef { slot, gen },
                },
            );
        }
    }
}

/// Containers are up: injected pods start fetching a certificate; istiod starts up.
pub fn on_containers_started(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let s = f.cluster_mut(cluster).objects_mut();
    if !s.is_current(pod) || s.pods[pod.slot as usize].phase != PodPhase::Starting {
        return;
    }
    let p = &mut s.pods[pod.slot as usize];
    p.started_at = now;
    if p.workload == 0 {
        start_istiod(f, ctx, cluster, pod);
    } else if p.injected {
        start_agent(f, ctx, cluster, pod);
    } else {
        let delay = s.workloads[p.workload as usize].ready_delay;
        s.set_phase(now, pod.slot, PodPhase::Warming);
        ctx.schedule_in(delay, Event::PodReady { cluster, pod });
    }
}

/// istio-agent starts: the startup probe's clock runs from now, the first CSR goes out.
fn start_agent(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let s = f.cluster_mut(cluster).objects_mut();
    let p = &mut s.pods[pod.slot as usize];
    p.started_at = now;
    p.agent_failures = 0;
    s.set_phase(now, pod.slot, PodPhase::WaitingCert);
    if let Some(after) = kill_after(spec) {
        super::probes::watch(f, ctx, cluster, pod, after);
    }
    certs::on_csr_attempt(f, ctx, cluster, pod);
}

/// The certificate arrived: the proxy becomes ready after the workload's ready delay.
pub fn on_certificate(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let started_at = c.objects().pods[pod.slot as usize].started_at;
    if let Some(after) = kill_after(spec) {
        c.probes_mut().strike(pod, started_at.saturating_add(after));
    }
    let s = c.objects_mut();
    let delay = s.workloads[s.pods[pod.slot as usize].workload as usize].ready_delay;
    s.set_phase(now, pod.slot, PodPhase::Warming);
    ctx.schedule_in(delay, Event::PodReady { cluster, pod });
}

/// A warming pod turns ready; an istiod replica starts serving.
pub fn on_pod_ready(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let s = c.objects_mut();
    if !s.is_current(pod) || s.pods[pod.slot as usize].phase != PodPhase::Warming {
        return;
    }
    s.set_phase(now, pod.slot, PodPhase::Ready);
    if s.pods[pod.slot as usize].workload == 0 {
        super::startup::on_ready(f, cluster, pod, now);
        f.cluster_mut(cluster)
            .istiod_mut()
            .add_ready(pod.slot, &spec.istiod, now);
    }
    f.check_health(now, cluster);
}

/// The proxy's kill path fired without a certificate. Startup probe: the kubelet kills
/// and restarts it in one sync (no back-off state unless the previous exit still holds
/// it). postStart `pilot-agent wait` failed: the container is killed and restarts after
/// the kubelet's back-off (10 s, doubling to 300 s; CrashLoopBackOff). Either way the
/// proxy drains `terminationDrainDuration` first (control/kubelet.rs).
pub fn on_startup_probe_kill(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let s = c.objects();
    if !s.is_current(pod) || s.pods[pod.slot as usize].phase != PodPhase::WaitingCert {
        return;
    }
    // istio-csr waits on the agent's gRPC context: the kill cancels it.
    super::ra::agent_gone(f, ctx, cluster, pod);
    let c = f.cluster_mut(cluster);
    let killed_at = now + spec.agent.termination_drain;
    let mut rb = take_backoff(c, spec, pod.slot);
    let restart_at = match kill_path(spec) {
        ProxyKillPath::PostStartTimeout { .. } => rb.restart_after_exit(killed_at, c.kubelet_rng()),
        _ => match rb.probe_kill(now, killed_at) {
            Some(t) => t,
            None => {
                let mut t = killed_at;
                loop {
                    match rb.sync(t, c.kubelet_rng()) {
                        SyncDecision::Start => break t,
                        SyncDecision::BackOff { next_sync, .. } => t = next_sync,
                    }
                }
            }
        },
    };
    restart_container(f, ctx, cluster, pod, rb, restart_at);
    let probe = !matches!(kill_path(spec), ProxyKillPath::PostStartTimeout { .. });
    super::journal::proxy_killed(f, now, cluster, pod.slot, probe, killed_at, restart_at);
}

/// istiod's process exited while starting (`failed to create discovery service`: no
/// serving certificate for its CSR `csr`): the kubelet restarts the container after its
/// back-off (10 s, doubling to 300 s; CrashLoopBackOff).
pub fn on_istiod_exit(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    csr: Option<u64>,
) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let probe = super::startup::probe(spec);
    let c = f.cluster_mut(cluster);
    let started = c
        .istiod_mut()
        .starting_mut(pod.slot, pod.gen)
        .map_or(now, |r| r.started);
    c.istiod_mut().remove(pod.slot, now, &probe);
    let mut rb = take_backoff(c, spec, pod.slot);
    let restart_at = rb.restart_after_exit(now, c.kubelet_rng());
    restart_container(f, ctx, cluster, pod, rb, restart_at);
    super::journal::istiod_starting(f, started, cluster, pod.slot, now, probe.period);
    super::journal::istiod_exited(f, now, cluster, pod.slot, csr, restart_at);
}

/// The kubelet's restart back-off of pod `slot` (a new one at its first restart).
fn take_backoff(c: &mut Cluster, spec: &ClusterSpec, slot: u32) -> RestartBackoff {
    c.objects_mut()
        .backoffs
        .remove(&slot)
        .unwrap_or_else(|| RestartBackoff::new(kubelet_config(&spec.kubernetes)))
}

/// The container of `pod` is gone (killed or exited): the pod waits in Backoff, the
/// kubelet keeping back-off `rb`, and a new container (a new generation: whatever the
/// old one was waiting for is now stale) starts at `restart_at`.
fn restart_container(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    rb: RestartBackoff,
    restart_at: SimTime,
) {
    let now = ctx.now();
    let c = f.cluster_mut(cluster);
    c.counters_mut().pod_restarts += 1;
    let s = c.objects_mut();
    s.add_restart(now, pod.slot);
    s.set_phase(now, pod.slot, PodPhase::Backoff);
    s.backoffs.insert(pod.slot, rb);
    let p = &mut s.pods[pod.slot as usize];
    p.gen = p.gen.wrapping_add(1);
    let next = PodRef {
        slot: pod.slot,
        gen: p.gen,
    };
    ctx.schedule_at(restart_at, Event::ContainerRestart { cluster, pod: next });
    f.check_health(now, cluster);
}

/// CrashLoopBackOff is over: the container starts again (no image pull).
pub fn on_container_restart(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let s = f.cluster_mut(cluster).objects_mut();
    if !s.is_current(pod) || s.pods[pod.slot as usize].phase != PodPhase::Backoff {
        return;
    }
    if s.pods[pod.slot as usize].workload == 0 {
        s.pods[pod.slot as usize].started_at = now;
        start_istiod(f, ctx, cluster, pod);
    } else {
        start_agent(f, ctx, cluster, pod);
    }
}

/// istiod's container starts: NotReady (Warming) until its start-up is done
/// ([`super::startup`]).
fn start_istiod(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    f.cluster_mut(cluster)
        .objects_mut()
        .set_phase(now, pod.slot, PodPhase::Warming);
    super::startup::begin(f, ctx, cluster, pod);
}

/// Deletes a pod (eviction, scale-down or restart): it terminates for the drain period,
/// holding its node slot, while its ReplicaSet creates a replacement at once.
pub fn delete_pod(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, slot: u32) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let p = &c.objects().pods[slot as usize];
    if matches!(p.phase, PodPhase::Free | PodPhase::Terminating) {
        return;
    }
    let (workload, node) = (u32::from(p.workload), p.node);
    let waiting = PodRef { slot, gen: p.gen };
    super::ra::agent_gone(f, ctx, cluster, waiting);
    let c = f.cluster_mut(cluster);
    if workload == 0 {
        c.istiod_mut()
            .remove(slot, now, &super::startup::probe(spec));
        super::ra::abort_replica_flows(f, ctx, cluster, slot);
    }
    let c = f.cluster_mut(cluster);
    let s = c.objects_mut();
    if node == NONE {
        // Not yet on a node: gone at once.
        s.release(now, slot);
    } else {
        s.set_phase(now, slot, PodPhase::Terminating);
        let p = &mut s.pods[slot as usize];
        p.gen = p.gen.wrapping_add(1);
        let pod = PodRef { slot, gen: p.gen };
        ctx.schedule_in(
            spec.agent.termination_drain,
            Event::PodTerminated { cluster, pod },
        );
    }
    sync_workload(f, ctx, cluster, workload);
    f.check_health(now, cluster);
}

/// A terminated pod frees its node slot; a drained node may now be terminated.
pub fn on_pod_terminated(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let s = f.cluster_mut(cluster).objects_mut();
    if !s.is_current(pod) || s.pods[pod.slot as usize].phase != PodPhase::Terminating {
        return;
    }
    let node = s.pods[pod.slot as usize].node;
    s.release(now, pod.slot);
    schedule_pending(f, ctx, cluster);
    if node != NONE {
        nodes::on_pod_left_node(f, ctx, cluster, node);
    }
}

/// Sets a workload's desired replicas; scale-down deletes the least advanced pods first.
pub fn scale_workload(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    workload: u32,
    replicas: u32,
) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let s = f.cluster_mut(cluster).objects_mut();
    s.workloads[workload as usize].desired = replicas;
    if workload == 0 {
        s.workloads[0].pdb_max_unavailable = istiod_pdb(spec, replicas);
    }
    let active = s.workloads[workload as usize].active;
    if active > replicas {
        // Victims: not-ready before ready, then the newest slot (ReplicaSet's ranking).
        let mut victims: Vec<(u8, u32)> = s
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                u32::from(p.workload) == workload
                    && !matches!(p.phase, PodPhase::Free | PodPhase::Terminating)
            })
            .map(|(i, p)| ((p.phase == PodPhase::Ready) as u8, u32::MAX - i as u32))
            .collect();
        victims.sort_unstable();
        for &(_, inv) in victims.iter().take((active - replicas) as usize) {
            delete_pod(f, ctx, cluster, u32::MAX - inv);
        }
    } else {
        sync_workload(f, ctx, cluster, workload);
    }
    f.check_health(now, cluster);
}
