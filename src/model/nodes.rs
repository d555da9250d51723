//! The EKS managed node group rolling update, and Karpenter's budgeted drift.
//!
//! DEFAULT: launch `surge = max(2 x AZs, maxUnavailable)` new nodes (at most the group's
//! size, so the scale-down phase never drains new nodes), wait until they are Ready,
//! then repeatedly cordon and drain up to `maxUnavailable` old nodes; each drained node
//! is terminated `terminate_delay` after its cordon and, while replacements are still
//! owed, a new node is launched. The next batch starts when the previous one is
//! terminated and no launched node is still coming up. MINIMAL: no surge, every old node
//! is replaced after it is gone. KARPENTER: like DEFAULT with surge = budget =
//! ceil(percent x nodes). Node groups of a cluster are upgraded one after another.
//!
//! Drain: evictions honour PDBs (a refused eviction is retried every 5 s) and the
//! cluster's pacing strategy. A node not drained within `drain_timeout` fails the update
//! (PodEvictionFailure) unless `force`, which then deletes what is left.

use crate::engine::{rng, Context, SimTime};
use crate::scenario::{MaxUnavailable, UpdateStrategy};

use super::state::{ClusterState, Node, NodeState, PodPhase};
use super::{pods, rollout, Event, Fleet};

/// One node group's update in progress.
#[derive(Debug, Clone)]
pub struct GroupUpgrade {
    /// Node group index.
    pub group: u32,
    /// Old nodes not yet cordoned, in order.
    pub old_nodes: Vec<u32>,
    /// Nodes cordoned in the current batch and not yet terminated.
    pub draining: u32,
    /// Launched nodes not yet Ready.
    pub launching: u32,
    /// Replacements still to launch as old nodes go.
    pub replacements_left: u32,
    /// Batch size.
    pub max_unavailable: u32,
    /// Waiting for the surge nodes before the first batch.
    pub surge_pending: bool,
}

/// Adds a node (Launching) and returns its index.
pub fn add_node(state: &mut ClusterState, group: u32, capacity: u32, new_ami: bool) -> u32 {
    state.nodes.push(Node {
        group,
        new_ami,
        state: NodeState::Launching,
        capacity,
        pods: Vec::new(),
        cordoned_at: SimTime::ZERO,
        tick_gen: 0,
        eviction_failed: false,
    });
    (state.nodes.len() - 1) as u32
}

fn launch(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, group: u32) {
    let spec = f.spec(cluster);
    let g = &spec.node_groups[group as usize];
    let c = &mut f.clusters[cluster as usize];
    let node = add_node(&mut c.state, group, g.max_pods, true);
    let span = g.launch_max.saturating_sub(g.launch_min);
    let delay = g.launch_min + span.mul_f64(rng::unit_f64(&mut c.rng));
    if let Some(u) = c.upgrade.as_mut() {
        u.launching += 1;
    }
    if ctx.now() >= f.window_start {
        c.window.triggers += 1;
    }
    ctx.schedule_in(delay, Event::NodeReady { cluster, node });
}

/// Starts the next node group's update of a cluster, or finishes the cluster.
pub fn start_next_group(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    let Some(group) = c.groups_left.pop_front() else {
        c.upgrade = None;
        rollout::cluster_done(f, ctx, cluster);
        return;
    };
    let g = &spec.node_groups[group as usize];
    let old_nodes: Vec<u32> = (0..c.state.nodes.len() as u32)
        .filter(|&n| {
            let node = &c.state.nodes[n as usize];
            node.group == group && !node.new_ami && node.state != NodeState::Terminated
        })
        .collect();
    let size = old_nodes.len() as u32;
    let max_unavailable = match g.max_unavailable {
        MaxUnavailable::Count(n) => n,
        MaxUnavailable::Percent(p) => ((p / 100.0) * size as f64).ceil() as u32,
    }
    .clamp(1, size.max(1));
    let surge = match g.strategy {
        UpdateStrategy::Default => (2 * g.azs).max(max_unavailable),
        UpdateStrategy::Minimal => 0,
        UpdateStrategy::Karpenter => max_unavailable,
    }
    .min(size);
    c.upgrade = Some(GroupUpgrade {
        group,
        old_nodes,
        draining: 0,
        launching: 0,
        replacements_left: size - surge,
        max_unavailable,
        surge_pending: surge > 0,
    });
    for _ in 0..surge {
        launch(f, ctx, cluster, group);
    }
    if surge == 0 {
        next_batch(f, ctx, cluster);
    }
}

/// Cordons and drains the next batch of old nodes, or finishes the group.
pub fn next_batch(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let now = ctx.now();
    if f.rollout.paused {
        return; // resumed by the intervention
    }
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    let Some(u) = c.upgrade.as_mut() else { return };
    if u.draining > 0 || u.launching > 0 {
        return;
    }
    if u.old_nodes.is_empty() {
        start_next_group(f, ctx, cluster);
        return;
    }
    let take = (u.max_unavailable as usize).min(u.old_nodes.len());
    let batch: Vec<u32> = u.old_nodes.drain(..take).collect();
    u.draining = batch.len() as u32;
    let g = &spec.node_groups[u.group as usize];
    for node in batch {
        c.state.mark_unschedulable(node);
        let n = &mut c.state.nodes[node as usize];
        n.state = NodeState::Draining;
        n.cordoned_at = now;
        n.tick_gen += 1;
        let gen = n.tick_gen;
        ctx.schedule_at(now, Event::DrainTick { cluster, node, gen });
        ctx.schedule_in(g.drain_timeout, Event::DrainDeadline { cluster, node });
    }
}

/// A launched node is Ready: it takes pods; the update may proceed.
pub fn on_node_ready(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let c = &mut f.clusters[cluster as usize];
    c.state.nodes[node as usize].state = NodeState::Ready;
    c.state.mark_schedulable(node);
    pods::schedule_pending(f, ctx, cluster);
    let c = &mut f.clusters[cluster as usize];
    if let Some(u) = c.upgrade.as_mut() {
        u.launching = u.launching.saturating_sub(1);
        if u.launching == 0 {
            u.surge_pending = false;
            next_batch(f, ctx, cluster);
        }
    }
}

/// Evicts what the PDBs and the pacer allow from a draining node.
pub fn on_drain_tick(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32, gen: u32) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    let n = &c.state.nodes[node as usize];
    if n.state != NodeState::Draining || n.tick_gen != gen {
        return;
    }
    let mut retry_at = SimTime::MAX;
    let candidates: Vec<u32> = n.pods.clone();
    for slot in candidates {
        let c = &mut f.clusters[cluster as usize];
        let p = &c.state.pods[slot as usize];
        if p.phase == PodPhase::Terminating {
            continue;
        }
        let ready = p.phase == PodPhase::Ready;
        if !c.state.workloads[p.workload as usize].eviction_allowed(ready) {
            retry_at = retry_at.min(now + spec.kubernetes.eviction_retry);
            continue;
        }
        if let Err(at) = c.pacer.take(now) {
            retry_at = retry_at.min(at);
            break;
        }
        c.counters.evictions += 1;
        if now >= f.window_start {
            c.window.triggers += 1;
        }
        pods::delete_pod(f, ctx, cluster, slot);
    }
    let c = &mut f.clusters[cluster as usize];
    let n = &mut c.state.nodes[node as usize];
    if n.pods.is_empty() {
        node_drained(f, ctx, cluster, node);
    } else if retry_at != SimTime::MAX {
        n.tick_gen += 1;
        let gen = n.tick_gen;
        ctx.schedule_at(retry_at, Event::DrainTick { cluster, node, gen });
    }
}

/// A pod left a node: a draining node that is now empty can go.
pub fn on_pod_left_node(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let n = &f.clusters[cluster as usize].state.nodes[node as usize];
    if n.state == NodeState::Draining && n.pods.is_empty() {
        node_drained(f, ctx, cluster, node);
    }
}

fn node_drained(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    let n = &mut c.state.nodes[node as usize];
    let g = &spec.node_groups[n.group as usize];
    n.tick_gen += 1; // no more drain ticks
    let at = (n.cordoned_at + g.terminate_delay).max(ctx.now());
    ctx.schedule_at(at, Event::NodeTerminate { cluster, node });
}

/// The drain limit: force deletes what is left; otherwise the update fails.
pub fn on_drain_deadline(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let spec = f.spec(cluster);
    let c = &mut f.clusters[cluster as usize];
    let n = &c.state.nodes[node as usize];
    if n.state != NodeState::Draining || n.pods.is_empty() {
        return;
    }
    let g = &spec.node_groups[n.group as usize];
    if g.force {
        let left: Vec<u32> = n.pods.clone();
        for slot in left {
            let c = &mut f.clusters[cluster as usize];
            if c.state.pods[slot as usize].phase != PodPhase::Terminating {
                c.counters.evictions += 1;
                pods::delete_pod(f, ctx, cluster, slot);
            }
        }
        return;
    }
    // PodEvictionFailure: the update stops; nodes still draining are uncordoned.
    for i in 0..c.state.nodes.len() {
        if c.state.nodes[i].state == NodeState::Draining {
            let n = &mut c.state.nodes[i];
            n.state = NodeState::Ready;
            n.tick_gen += 1;
            n.eviction_failed = i as u32 == node;
            c.state.mark_schedulable(i as u32);
        }
    }
    c.upgrade = None;
    c.groups_left.clear();
    c.upgrade_failed = true;
    pods::schedule_pending(f, ctx, cluster);
    rollout::cluster_done(f, ctx, cluster);
}

/// The ASG terminates a drained node; a replacement is launched if one is owed.
pub fn on_node_terminate(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let c = &mut f.clusters[cluster as usize];
    let n = &mut c.state.nodes[node as usize];
    if n.state != NodeState::Draining {
        return;
    }
    n.state = NodeState::Terminated;
    let group = n.group;
    let Some(u) = c.upgrade.as_mut() else { return };
    u.draining -= 1;
    if u.replacements_left > 0 {
        u.replacements_left -= 1;
        launch(f, ctx, cluster, group);
    }
    next_batch(f, ctx, cluster);
}
