//! The fleet rollout: waves of clusters with health gates and soak, the istiod
//! scale-down window, AIMD pacing, and interventions at a time or on a condition.
//!
//! The pipeline sees a wave done the way `aws eks wait nodegroup-active` (boto3
//! `EKS.Waiter.NodegroupActive`) does: it polls, at once when the wave starts and then
//! every `rollout.poll_interval` (30 s), until every cluster of the wave has finished
//! (done or failed). A cluster's own events never touch the rollout: only the fleet's
//! events (wave start, poll, sample, intervention) read the clusters and move it on.

use crate::engine::{Context, SimTime};
use crate::predicate::Value;
use crate::scenario::{Action, ConditionMetric, Pacing, RestartPods, Scenario, Trigger};

use super::event::Event;
use super::fleet::Fleet;
use super::state::{Pod, PodPhase, NONE};
use super::{certs, nodes, pacing, pods};

/// Where the rollout stands.
#[derive(Debug, Clone)]
pub struct RolloutState {
    /// Clusters of each wave.
    waves: Vec<Vec<u32>>,
    /// The wave in progress (or next to start).
    current: usize,
    /// The current wave has started.
    started: bool,
    /// When the current wave was seen done: the first poll at which all its clusters
    /// had finished (the gate's clock).
    wave_done_at: Option<SimTime>,
    /// When the gate was first seen healthy (soak's clock).
    healthy_since: Option<SimTime>,
    /// Paused by an intervention.
    paused: bool,
    /// Halted: a gate timed out or an upgrade failed behind a gate.
    halted: bool,
    /// Interventions fired already.
    fired: Vec<bool>,
}

impl RolloutState {
    /// Splits the clusters into waves.
    pub fn new(sc: &Scenario) -> Self {
        let n = sc.clusters.len() as u32;
        let mut waves = Vec::new();
        let mut next = 0u32;
        for &size in &sc.rollout.waves {
            let end = (next + size).min(n);
            if end > next {
                waves.push((next..end).collect());
            }
            next = end;
        }
        if next < n {
            waves.push((next..n).collect());
        }
        RolloutState {
            waves,
            current: 0,
            started: false,
            wave_done_at: None,
            healthy_since: None,
            paused: false,
            halted: false,
            fired: vec![false; sc.interventions.len()],
        }
    }

    /// Paused by an intervention.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Halted: a gate timed out or an upgrade failed behind a gate.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// The wave in progress, once it has started.
    pub fn started_wave(&self) -> Option<usize> {
        self.started.then_some(self.current)
    }
}

/// Schedules the first wave and the timed interventions.
pub fn schedule_start(f: &Fleet, ctx: &mut Context<Event>) {
    let sc = f.scenario();
    if !f.rollout().waves.is_empty() {
        ctx.schedule_at(sc.rollout.start, Event::WaveStart { wave: 0 });
    }
    for (i, iv) in sc.interventions.iter().enumerate() {
        if let Trigger::At(t) = iv.trigger {
            ctx.schedule_at(t, Event::Intervention { index: i as u32 });
        }
    }
}

/// Starts every cluster of a wave, then polls it at once (the waiter's first attempt).
pub fn start_wave(f: &mut Fleet, ctx: &mut Context<Event>, wave: u32) {
    let r = f.rollout_mut();
    if r.halted || wave as usize != r.current || r.started {
        return;
    }
    if r.paused {
        return; // resume starts it
    }
    r.started = true;
    r.wave_done_at = None;
    r.healthy_since = None;
    let clusters = r.waves[wave as usize].clone();
    for cluster in clusters {
        start_cluster(f, ctx, cluster);
    }
    poll_wave(f, ctx, wave);
}

/// The pipeline's waiter polls wave `wave`: if it is the current, started wave and every
/// cluster of it has finished (done or failed), the wave is done now and the rollout may
/// advance; otherwise it polls again `rollout.poll_interval` later. Polling stops once
/// the wave is seen done, or when it is no longer the wave in progress.
pub fn poll_wave(f: &mut Fleet, ctx: &mut Context<Event>, wave: u32) {
    let now = ctx.now();
    let r = f.rollout();
    if r.halted || !r.started || wave as usize != r.current || r.wave_done_at.is_some() {
        return;
    }
    let finished = r.waves[r.current].iter().all(|&c| {
        let u = f.cluster(c).upgrade();
        u.done_at().is_some() || u.failed()
    });
    if finished {
        f.rollout_mut().wave_done_at = Some(now);
        try_advance(f, ctx);
    } else {
        ctx.schedule_in(
            f.scenario().rollout.poll_interval,
            Event::RolloutPoll { wave },
        );
    }
}

fn start_cluster(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    c.upgrade_mut().begin(
        spec.node_groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.target_ami.is_some())
            .map(|(i, _)| i as u32)
            .collect(),
    );
    if let Some(n) = f.scenario().rollout.istiod_replicas_during {
        let c = f.cluster_mut(cluster);
        let desired = c.objects().workloads[0].desired;
        c.istiod_mut().set_restore(desired);
        pods::scale_workload(f, ctx, cluster, 0, n);
    }
    nodes::start_next_group(f, ctx, cluster);
}

/// A cluster's upgrade finished (or failed). Only the cluster's own state changes: the
/// rollout sees it at its next poll ([`poll_wave`]).
pub fn cluster_done(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let now = ctx.now();
    let c = f.cluster_mut(cluster);
    c.upgrade_mut().finish(now);
    if let Some(n) = c.istiod_mut().take_restore() {
        pods::scale_workload(f, ctx, cluster, 0, n);
    }
}

/// Starts the next wave when the current one was seen done and its gate (if any) holds.
fn try_advance(f: &mut Fleet, ctx: &mut Context<Event>) {
    let now = ctx.now();
    let sc = f.scenario();
    let r = f.rollout();
    let Some(done_at) = r.wave_done_at else {
        return;
    };
    if r.halted || r.paused || r.current + 1 >= r.waves.len() {
        return;
    }
    let wave = &r.waves[r.current];
    if sc.rollout.health_gate {
        let failed = wave.iter().any(|&c| f.cluster(c).upgrade().failed());
        let healthy = wave.iter().all(|&c| f.cluster(c).healthy());
        if failed || (!healthy && now.saturating_sub(done_at) >= sc.rollout.gate_timeout) {
            f.rollout_mut().halted = true;
            return;
        }
        if !healthy {
            f.rollout_mut().healthy_since = None;
            return; // the sample tick looks again
        }
    }
    let r = f.rollout_mut();
    let since = *r.healthy_since.get_or_insert(now);
    let start_at = since + sc.rollout.soak;
    r.current += 1;
    r.started = false;
    r.wave_done_at = None;
    ctx.schedule_at(
        start_at.max(now),
        Event::WaveStart {
            wave: r.current as u32,
        },
    );
}

/// Every sample: gates, conditional interventions.
pub fn on_sample(f: &mut Fleet, ctx: &mut Context<Event>) {
    try_advance(f, ctx);
    let sc = f.scenario();
    for i in 0..sc.interventions.len() {
        if f.rollout().fired[i] {
            continue;
        }
        let iv = &sc.interventions[i];
        let Trigger::When(cond) = &iv.trigger else {
            continue;
        };
        let targets = targets(f, i as u32);
        let metric = |m: ConditionMetric| -> f64 {
            match m {
                ConditionMetric::ReadyFraction => {
                    let (ready, desired) = targets.iter().fold((0u64, 0u64), |(r, d), &c| {
                        let s = f.cluster(c).objects();
                        (r + s.counts().ready as u64, d + s.desired_pods() as u64)
                    });
                    if desired == 0 {
                        1.0
                    } else {
                        ready as f64 / desired as f64
                    }
                }
                m => targets
                    .iter()
                    .map(|&c| {
                        let cl = f.cluster(c);
                        match m {
                            ConditionMetric::CrashloopPods => {
                                cl.objects().counts().crashloop as f64
                            }
                            ConditionMetric::CsrFailedObjects => {
                                cl.cert().csrs().counts().failed as f64
                            }
                            ConditionMetric::PodsPending => cl.objects().counts().pending as f64,
                            ConditionMetric::CaQueue => f.spec(c).ca.map_or(0.0, |ca| {
                                let ca = f.ca(ca);
                                (ca.queue_len() + ca.in_service() as u64) as f64
                            }),
                            ConditionMetric::ReadyFraction => unreachable!(),
                        }
                    })
                    .sum(),
            }
        };
        let holds = cond.holds(&|i: usize| Value::Num(metric(ConditionMetric::ALL[i])));
        if holds {
            fire_intervention(f, ctx, i as u32);
        }
    }
}

/// AIMD: adjust each upgrading cluster's eviction rate from its CSR error ratio.
pub fn on_aimd_tick(f: &mut Fleet, ctx: &mut Context<Event>) {
    let now = ctx.now();
    let pacing = &f.scenario().rollout.pacing;
    let Pacing::Aimd { interval, .. } = *pacing else {
        return;
    };
    for c in f.clusters_mut() {
        let window = c.take_aimd_window();
        pacing::aimd_step(c.pacer_mut(), pacing, &window, now);
    }
    ctx.schedule_in(interval, Event::AimdTick);
}

/// The clusters an intervention applies to.
fn targets(f: &Fleet, index: u32) -> Vec<u32> {
    let iv = &f.scenario().interventions[index as usize];
    if iv.clusters.is_empty() {
        (0..f.cluster_count()).collect()
    } else {
        iv.clusters.iter().map(|&c| c as u32).collect()
    }
}

/// Carries out an intervention (once).
pub fn fire_intervention(f: &mut Fleet, ctx: &mut Context<Event>, index: u32) {
    if f.rollout().fired[index as usize] {
        return;
    }
    f.rollout_mut().fired[index as usize] = true;
    super::journal::intervention_fired(f, ctx.now(), index);
    let iv = &f.scenario().interventions[index as usize];
    match &iv.action {
        Action::ScaleIstiod { replicas } => {
            for c in targets(f, index) {
                // A scale during the upgrade window also becomes the value to restore.
                let istiod = f.cluster_mut(c).istiod_mut();
                if istiod.restoring() {
                    istiod.set_restore(*replicas);
                }
                pods::scale_workload(f, ctx, c, 0, *replicas);
            }
        }
        Action::DeleteFailedCsrs { .. } => {
            for c in targets(f, index) {
                certs::delete_failed_csrs(f, ctx, c);
            }
        }
        Action::PauseRollout => f.rollout_mut().paused = true,
        Action::ResumeRollout => {
            f.rollout_mut().paused = false;
            for c in 0..f.cluster_count() {
                nodes::resume(f, ctx, c);
            }
            let r = f.rollout();
            if !r.started && r.current < r.waves.len() {
                ctx.schedule_in(
                    SimTime::ZERO,
                    Event::WaveStart {
                        wave: r.current as u32,
                    },
                );
            }
            try_advance(f, ctx);
        }
        Action::RestartCrashlooping { .. } => start_paced_restart(f, ctx, index),
        Action::RestartWorkloads => {
            for c in targets(f, index) {
                let victims = f.cluster(c).objects().pod_slots(|p| {
                    p.injected && p.workload != 0 && p.phase != super::state::PodPhase::Free
                });
                for slot in victims {
                    pods::delete_pod(f, ctx, c, slot);
                }
            }
        }
        Action::SetCa {
            ca,
            workers,
            rate_limit,
        } => {
            if let Some(w) = workers {
                f.ca_mut(*ca).set_workers(*w, ctx);
            }
            if let Some(rl) = rate_limit {
                f.ca_mut(*ca).set_rate_limit(*rl, ctx);
            }
        }
    }
}

/// A paced restart: the chosen pods of the target clusters (crashlooping ones, or every
/// injected pod on a node that is not ready) are stopped at once and their replicas held
/// back, as an operator scaling the affected deployments down would; then `batch_size`
/// held replicas come back every `interval`, fresh (no back-off), so the certificate load
/// is the batch rate. Pods still in the webhook call are left to finish their create.
fn start_paced_restart(f: &mut Fleet, ctx: &mut Context<Event>, index: u32) {
    let Action::RestartCrashlooping { pods, .. } =
        f.scenario().interventions[index as usize].action
    else {
        return;
    };
    let chosen = |p: &Pod| match pods {
        RestartPods::Crashlooping => p.crashlooping(),
        RestartPods::NotReady => {
            p.injected
                && p.workload != 0
                && p.node != NONE
                && matches!(
                    p.phase,
                    PodPhase::Starting
                        | PodPhase::WaitingCert
                        | PodPhase::Warming
                        | PodPhase::Backoff
                )
        }
    };
    for c in targets(f, index) {
        let victims = f.cluster(c).objects().pod_slots(chosen);
        for slot in victims {
            let s = f.cluster_mut(c).objects_mut();
            let w = s.pods[slot as usize].workload as usize;
            s.workloads[w].held += 1;
            pods::delete_pod(f, ctx, c, slot);
        }
    }
    restart_batch(f, ctx, index);
}

/// Releases the next batch of held replicas; reschedules itself while any are held.
pub fn restart_batch(f: &mut Fleet, ctx: &mut Context<Event>, index: u32) {
    let Action::RestartCrashlooping {
        batch_size,
        interval,
        ..
    } = f.scenario().interventions[index as usize].action
    else {
        return;
    };
    let mut left = batch_size;
    let mut remaining = false;
    for c in targets(f, index) {
        let workloads = f.cluster(c).objects().workloads.len() as u32;
        for w in 0..workloads {
            let wl = &mut f.cluster_mut(c).objects_mut().workloads[w as usize];
            let n = wl.held.min(left);
            wl.held -= n;
            left -= n;
            remaining |= wl.held > 0;
            if n > 0 {
                pods::sync_workload(f, ctx, c, w);
            }
        }
    }
    if remaining {
        ctx.schedule_in(interval, Event::RestartBatch { index });
    }
}
