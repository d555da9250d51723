//! The EKS managed node group rolling update, and Karpenter's budgeted drift.
//!
//! DEFAULT: launch `surge = max(2 x AZs, maxUnavailable)` new nodes (at most the group's
//! size, so the scale-down phase never drains new nodes), wait until they are Ready,
//! then repeatedly cordon and drain up to `maxUnavailable` old nodes; each drained node
//! is terminated `terminate_delay` after its cordon and, while replacements are still
//! owed, a new node is launched. The next batch starts when the previous one is
//! terminated and no launched node is still coming up. MINIMAL: no surge, every old node
//! is replaced after it is gone. KARPENTER: like DEFAULT with surge = budget =
//! ceil(percent x nodes). Node groups of a cluster are upgraded one after another, or
//! all at once (`rollout.node_groups = "together"`), each with its own batches.
//!
//! Drain: evictions honour PDBs (a refused eviction is retried every 5 s) and the
//! cluster's pacing strategy. A node not drained within `drain_timeout` fails the update
//! (PodEvictionFailure) unless `force`, which then deletes what is left.

use std::collections::VecDeque;

use crate::engine::{rng, Context, RngStream, SimTime};
use crate::scenario::{MaxUnavailable, NodeGroupOrder, NodeGroupSpec, UpdateStrategy};

use super::event::Event;
use super::fleet::Fleet;
use super::state::{NodeState, PodPhase};
use super::{pods, rollout};

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

/// A cluster's node upgrade: the groups in progress, the groups still to do, how it
/// ended, and each node group's `node-launch` stream.
#[derive(Debug, Clone)]
pub struct NodeUpgrade {
    /// Groups in progress (one, or every group when they go together).
    current: Vec<GroupUpgrade>,
    groups_left: VecDeque<u32>,
    done_at: Option<SimTime>,
    failed: bool,
    launch: Vec<RngStream>,
}

impl NodeUpgrade {
    /// Not started; `launch` holds the `node-launch` stream of each node group.
    pub fn new(launch: Vec<RngStream>) -> Self {
        NodeUpgrade {
            current: Vec::new(),
            groups_left: VecDeque::new(),
            done_at: None,
            failed: false,
            launch,
        }
    }

    /// The launch-to-Ready time of a new node of group `group` (spec `g`): uniform in
    /// `[launch_min, launch_max]`, drawn from the group's own stream.
    pub fn launch_delay(&mut self, group: u32, g: &NodeGroupSpec) -> SimTime {
        let span = g.launch_max.saturating_sub(g.launch_min);
        g.launch_min + span.mul_f64(rng::unit_f64(&mut self.launch[group as usize]))
    }

    /// The group updates in progress.
    pub fn current(&self) -> &[GroupUpgrade] {
        &self.current
    }

    /// The update of group `group`, if it is in progress.
    fn group_mut(&mut self, group: u32) -> Option<&mut GroupUpgrade> {
        self.current.iter_mut().find(|u| u.group == group)
    }

    /// When the upgrade finished, if it did.
    pub fn done_at(&self) -> Option<SimTime> {
        self.done_at
    }

    /// Whether it failed (PodEvictionFailure).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The upgrade starts: these node groups, in order.
    pub fn begin(&mut self, groups: VecDeque<u32>) {
        self.groups_left = groups;
    }

    /// The upgrade is over (done, or failed earlier): the first time, it is done now.
    pub fn finish(&mut self, now: SimTime) {
        if self.done_at.is_none() && !self.failed {
            self.done_at = Some(now);
        }
    }
}

fn launch(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, group: u32) {
    let spec = f.spec(cluster);
    let g = &spec.node_groups[group as usize];
    let in_window = f.in_end_window(ctx.now());
    let c = f.cluster_mut(cluster);
    let node = c.objects_mut().add_node(group, g.max_pods, true);
    let delay = c.upgrade_mut().launch_delay(group, g);
    if let Some(u) = c.upgrade_mut().group_mut(group) {
        u.launching += 1;
    }
    c.note_trigger(in_window);
    ctx.schedule_in(delay, Event::NodeReady { cluster, node });
}

/// Starts the next node group's update of a cluster (every group, when they go
/// together), or finishes the cluster when none is left or in progress.
pub fn start_next_group(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let together = f.scenario().rollout.node_groups == NodeGroupOrder::Together;
    let u = f.cluster_mut(cluster).upgrade_mut();
    if u.groups_left.is_empty() {
        if u.current.is_empty() {
            rollout::cluster_done(f, ctx, cluster);
        }
        return;
    }
    if together {
        while let Some(group) = f.cluster_mut(cluster).upgrade_mut().groups_left.pop_front() {
            start_group(f, ctx, cluster, group);
        }
    } else if f.cluster(cluster).upgrade().current.is_empty() {
        let group = f.cluster_mut(cluster).upgrade_mut().groups_left.pop_front();
        start_group(f, ctx, cluster, group.expect("checked non-empty"));
    }
}

/// Starts the update of node group `group`: the surge, or the first batch.
fn start_group(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, group: u32) {
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let g = &spec.node_groups[group as usize];
    let s = c.objects();
    let old_nodes: Vec<u32> = (0..s.nodes.len() as u32)
        .filter(|&n| {
            let node = &s.nodes[n as usize];
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
    c.upgrade_mut().current.push(GroupUpgrade {
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
        next_batch(f, ctx, cluster, group);
    }
}

/// Resumes every group update of a cluster in progress (after a paused rollout).
pub fn resume(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32) {
    let groups: Vec<u32> = f
        .cluster(cluster)
        .upgrade()
        .current
        .iter()
        .map(|u| u.group)
        .collect();
    for group in groups {
        next_batch(f, ctx, cluster, group);
    }
}

/// Cordons and drains the next batch of old nodes of group `group`, or finishes it.
pub fn next_batch(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, group: u32) {
    let now = ctx.now();
    if f.rollout().paused() {
        return; // resumed by the intervention
    }
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let Some(u) = c.upgrade_mut().group_mut(group) else {
        return;
    };
    if u.draining > 0 || u.launching > 0 {
        return;
    }
    if u.old_nodes.is_empty() {
        c.upgrade_mut().current.retain(|u| u.group != group);
        start_next_group(f, ctx, cluster);
        return;
    }
    let take = (u.max_unavailable as usize).min(u.old_nodes.len());
    let batch: Vec<u32> = u.old_nodes.drain(..take).collect();
    u.draining = batch.len() as u32;
    let g = &spec.node_groups[u.group as usize];
    let s = c.objects_mut();
    for node in batch {
        s.mark_unschedulable(node);
        let n = &mut s.nodes[node as usize];
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
    let s = f.cluster_mut(cluster).objects_mut();
    s.nodes[node as usize].state = NodeState::Ready;
    s.mark_schedulable(node);
    let group = s.nodes[node as usize].group;
    pods::schedule_pending(f, ctx, cluster);
    if let Some(u) = f.cluster_mut(cluster).upgrade_mut().group_mut(group) {
        u.launching = u.launching.saturating_sub(1);
        if u.launching == 0 {
            u.surge_pending = false;
            next_batch(f, ctx, cluster, group);
        }
    }
}

/// Evicts what the PDBs and the pacer allow from a draining node.
pub fn on_drain_tick(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32, gen: u32) {
    let now = ctx.now();
    let spec = f.spec(cluster);
    let in_window = f.in_end_window(now);
    let n = &f.cluster(cluster).objects().nodes[node as usize];
    if n.state != NodeState::Draining || n.tick_gen != gen {
        return;
    }
    let mut retry_at = SimTime::MAX;
    let candidates: Vec<u32> = n.pods.clone();
    // The node's pods are read one after the other below; asking for all their slots
    // first overlaps the cache misses (at 20 M pods, each is one).
    let s = f.cluster(cluster).objects();
    for &slot in &candidates {
        s.prefetch_pod(slot);
    }
    for slot in candidates {
        let c = f.cluster_mut(cluster);
        let s = c.objects();
        let p = &s.pods[slot as usize];
        if p.phase == PodPhase::Terminating {
            continue;
        }
        let ready = p.phase == PodPhase::Ready;
        if !s.workloads[p.workload as usize].eviction_allowed(ready) {
            retry_at = retry_at.min(now + spec.kubernetes.eviction_retry);
            let w = u32::from(p.workload);
            super::journal::eviction_refused(f, now, cluster, node, w);
            continue;
        }
        if let Err(at) = c.pacer_mut().take(now) {
            retry_at = retry_at.min(at);
            break;
        }
        c.counters_mut().evictions += 1;
        c.note_trigger(in_window);
        pods::delete_pod(f, ctx, cluster, slot);
    }
    let n = &mut f.cluster_mut(cluster).objects_mut().nodes[node as usize];
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
    let n = &f.cluster(cluster).objects().nodes[node as usize];
    if n.state == NodeState::Draining && n.pods.is_empty() {
        node_drained(f, ctx, cluster, node);
    }
}

fn node_drained(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let spec = f.spec(cluster);
    let n = &mut f.cluster_mut(cluster).objects_mut().nodes[node as usize];
    let g = &spec.node_groups[n.group as usize];
    n.tick_gen += 1; // no more drain ticks
    let at = (n.cordoned_at + g.terminate_delay).max(ctx.now());
    ctx.schedule_at(at, Event::NodeTerminate { cluster, node });
}

/// The drain limit: force deletes what is left; otherwise the update fails.
pub fn on_drain_deadline(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    let n = &c.objects().nodes[node as usize];
    if n.state != NodeState::Draining || n.pods.is_empty() {
        return;
    }
    let g = &spec.node_groups[n.group as usize];
    if g.force {
        let left: Vec<u32> = n.pods.clone();
        for slot in left {
            let c = f.cluster_mut(cluster);
            if c.objects().pods[slot as usize].phase != PodPhase::Terminating {
                c.counters_mut().evictions += 1;
                pods::delete_pod(f, ctx, cluster, slot);
            }
        }
        return;
    }
    // PodEvictionFailure: the update stops; nodes still draining are uncordoned.
    super::journal::drain_failed(f, ctx.now(), cluster, node);
    let c = f.cluster_mut(cluster);
    let s = c.objects_mut();
    for i in 0..s.nodes.len() {
        if s.nodes[i].state == NodeState::Draining {
            let n = &mut s.nodes[i];
            n.state = NodeState::Ready;
            n.tick_gen += 1;
            n.eviction_failed = i as u32 == node;
            s.mark_schedulable(i as u32);
        }
    }
    let u = c.upgrade_mut();
    u.current.clear();
    u.groups_left.clear();
    u.failed = true;
    pods::schedule_pending(f, ctx, cluster);
    rollout::cluster_done(f, ctx, cluster);
}

/// The ASG terminates a drained node; a replacement is launched if one is owed.
pub fn on_node_terminate(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, node: u32) {
    let c = f.cluster_mut(cluster);
    let s = c.objects_mut();
    let n = &s.nodes[node as usize];
    if n.state != NodeState::Draining {
        return;
    }
    let group = n.group;
    s.terminate_node(node);
    let Some(u) = c.upgrade_mut().group_mut(group) else {
        return;
    };
    u.draining -= 1;
    if u.replacements_left > 0 {
        u.replacements_left -= 1;
        launch(f, ctx, cluster, group);
    }
    next_batch(f, ctx, cluster, group);
}
