//! The fleet rollout: waves of clusters with health gates and soak, the istiod
//! scale-down window, AIMD pacing, and interventions at a time or on a condition.

use crate::engine::{Context, SimTime};
use crate::predicate::Value;
use crate::scenario::{Action, ConditionMetric, Pacing, Scenario, Trigger};

use super::{certs, nodes, pacing, pods, Event, Fleet};

/// Where the rollout stands.
#[derive(Debug, Clone)]
pub struct RolloutState {
    /// Clusters of each wave.
    pub waves: Vec<Vec<u32>>,
    /// The wave in progress (or next to start).
    pub current: usize,
    /// The current wave has started.
    pub started: bool,
    /// Clusters of the current wave not yet done.
    pub outstanding: u32,
    /// When the current wave's clusters were all done (the gate's clock).
    pub wave_done_at: Option<SimTime>,
    /// When the gate was first seen healthy (soak's clock).
    pub healthy_since: Option<SimTime>,
    /// Paused by an intervention.
    pub paused: bool,
    /// Halted: a gate timed out or an upgrade failed behind a gate.
    pub halted: bool,
    /// Interventions fired already.
    pub fired: Vec<bool>,
    /// Paced restarts: pods still to restart per intervention, by cluster.
    pub restart_done: Vec<bool>,
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
            outstanding: 0,
            wave_done_at: None,
            healthy_since: None,
            paused: false,
            halted: false,
            fired: vec![false; sc.interventions.len()],
            restart_done: vec![false; sc.interventions.len()],
        }
    }
}

/// Schedules the first wave and the timed interventions.
pub fn schedule_start(f: &Fleet, ctx: &mut Context<Event>) {
    if !f.rollout.waves.is_empty() {
        ctx.schedule_at(f.sc.rollout.start, Event::WaveStart { wave: 0 });
    }
    for (i, iv) in f.sc.interventions.iter().enumerate() {
        if let Trigger::At(t) = iv.trigger {
            ctx.schedule_at(t, Event::Intervention { index: i as u32 });
        }
    }
}

/// Starts every cluster of a wave.
pub fn start_wave(f: &mut Fleet, ctx: &mut Context<Event>, wave: u32) {
    let r = &mut f.rollout;
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
    r.outstanding = clusters.len() as u32;
    for cluster in clusters {
        start_cluster(f, ctx, cluster);
    }
}

fn start_cluster(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    c.groups_left = spec
        .node_groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.target_ami.is_some())
        .map(|(i, _)| i as u32)
        .collect();
    if let Some(n) = f.sc.rollout.istiod_replicas_during {
        let c = &mut f.clusters[cluster as usize];
        c.istiod_restore = Some(c.state.workloads[0].desired);
        pods::scale_workload(f, ctx, cluster, 0, n);
    }
    nodes::start_next_group(f, ctx, cluster);
}

/// A cluster's upgrade finished (or failed).
pub fn cluster_done(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let now = ctx.now();
    let c = &mut f.clusters[cluster as usize];
    if c.upgrade_done_at.is_none() && !c.upgrade_failed {
        c.upgrade_done_at = Some(now);
    }
    if let Some(n) = c.istiod_restore.take() {
        pods::scale_workload(f, ctx, cluster, 0, n);
    }
    let r = &mut f.rollout;
    r.outstanding = r.outstanding.saturating_sub(1);
    if r.outstanding == 0 && r.started {
        r.wave_done_at = Some(now);
        try_advance(f, ctx);
    }
}

/// Starts the next wave when the current one is done and its gate (if any) holds.
fn try_advance(f: &mut Fleet, ctx: &mut Context<Event>) {
    let now = ctx.now();
    let sc = f.sc;
    let r = &f.rollout;
    let Some(done_at) = r.wave_done_at else {
        return;
    };
    if r.halted || r.paused || r.current + 1 >= r.waves.len() {
        return;
    }
    let wave = &r.waves[r.current];
    if sc.rollout.health_gate {
        let failed = wave.iter().any(|&c| f.clusters[c as usize].upgrade_failed);
        let healthy = wave.iter().all(|&c| f.clusters[c as usize].healthy);
        if failed || (!healthy && now.saturating_sub(done_at) >= sc.rollout.gate_timeout) {
            f.rollout.halted = true;
            return;
        }
        if !healthy {
            f.rollout.healthy_since = None;
            return; // the sample tick looks again
        }
    }
    let since = *f.rollout.healthy_since.get_or_insert(now);
    let start_at = since + sc.rollout.soak;
    let r = &mut f.rollout;
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
    for i in 0..f.sc.interventions.len() {
        if f.rollout.fired[i] {
            continue;
        }
        let iv = &f.sc.interventions[i];
        let Trigger::When(cond) = &iv.trigger else {
            continue;
        };
        let targets: Vec<u32> = if iv.clusters.is_empty() {
            (0..f.clusters.len() as u32).collect()
        } else {
            iv.clusters.iter().map(|&c| c as u32).collect()
        };
        let metric = |m: ConditionMetric| -> f64 {
            match m {
                ConditionMetric::ReadyFraction => {
                    let (ready, desired) = targets.iter().fold((0u64, 0u64), |(r, d), &c| {
                        let s = &f.clusters[c as usize].state;
                        (r + s.counts.ready as u64, d + s.desired_pods() as u64)
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
                        let cl = &f.clusters[c as usize];
                        match m {
                            ConditionMetric::CrashloopPods => cl.state.counts.crashloop as f64,
                            ConditionMetric::CsrFailedObjects => cl.failed_objects() as f64,
                            ConditionMetric::PodsPending => cl.state.counts.pending as f64,
                            ConditionMetric::CaQueue => {
                                let ca = &f.cas[f.sc.clusters[c as usize].ca];
                                (ca.queue_len() + ca.in_service() as u64) as f64
                            }
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
    let Pacing::Aimd { interval, .. } = f.sc.rollout.pacing else {
        return;
    };
    for c in &mut f.clusters {
        if let pacing::Pacer::Bucket(b) = &mut c.pacer {
            let rate = pacing::aimd_next_rate(&f.sc.rollout.pacing, b.rate_per_s(), &c.aimd);
            b.set_rate(now, rate, rate.max(1.0));
        }
        c.aimd = pacing::AimdWindow::default();
    }
    ctx.schedule_in(interval, Event::AimdTick);
}

fn targets(f: &Fleet, index: u32) -> Vec<u32> {
    let iv = &f.sc.interventions[index as usize];
    if iv.clusters.is_empty() {
        (0..f.clusters.len() as u32).collect()
    } else {
        iv.clusters.iter().map(|&c| c as u32).collect()
    }
}

/// Carries out an intervention (once).
pub fn fire_intervention(f: &mut Fleet, ctx: &mut Context<Event>, index: u32) {
    if f.rollout.fired[index as usize] {
        return;
    }
    f.rollout.fired[index as usize] = true;
    let iv = &f.sc.interventions[index as usize];
    match &iv.action {
        Action::ScaleIstiod { replicas } => {
            for c in targets(f, index) {
                // A scale during the upgrade window also becomes the value to restore.
                if f.clusters[c as usize].istiod_restore.is_some() {
                    f.clusters[c as usize].istiod_restore = Some(*replicas);
                }
                pods::scale_workload(f, ctx, c, 0, *replicas);
            }
        }
        Action::DeleteFailedCsrs => {
            for c in targets(f, index) {
                certs::delete_failed_csrs(f, ctx, c);
            }
        }
        Action::PauseRollout => f.rollout.paused = true,
        Action::ResumeRollout => {
            f.rollout.paused = false;
            for c in 0..f.clusters.len() as u32 {
                nodes::next_batch(f, ctx, c);
            }
            let r = &f.rollout;
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
        Action::SetCa {
            ca,
            workers,
            rate_limit,
        } => {
            if let Some(w) = workers {
                f.cas[*ca].set_workers(*w, ctx);
            }
            if let Some(rl) = rate_limit {
                f.cas[*ca].set_rate_limit(*rl, ctx);
            }
        }
    }
}

/// A paced restart: every crashlooping pod (restarted, not ready) of the target clusters
/// is stopped at once and its replica held back, as an operator scaling the affected
/// deployments down would; then `batch_size` held replicas come back every `interval`,
/// fresh (no back-off), so the certificate load is the batch rate.
fn start_paced_restart(f: &mut Fleet, ctx: &mut Context<Event>, index: u32) {
    for c in targets(f, index) {
        let victims: Vec<u32> = f.clusters[c as usize]
            .state
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.crashlooping())
            .map(|(i, _)| i as u32)
            .collect();
        for slot in victims {
            let cl = &mut f.clusters[c as usize];
            let w = cl.state.pods[slot as usize].workload as usize;
            cl.state.workloads[w].held += 1;
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
    } = f.sc.interventions[index as usize].action
    else {
        return;
    };
    let mut left = batch_size;
    let mut remaining = false;
    for c in targets(f, index) {
        let workloads = f.clusters[c as usize].state.workloads.len() as u32;
        for w in 0..workloads {
            let wl = &mut f.clusters[c as usize].state.workloads[w as usize];
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
