//! A cluster's Kubernetes objects: nodes, pods, workloads and the counters the metrics
//! read.
//!
//! Every pod phase change goes through [`ClusterState::set_phase`], which keeps the
//! counters (ready, pending, back-off, crashloop) exact and integrates crashloop
//! pod-seconds, so metrics never scan the pods.

use std::collections::VecDeque;

use crate::engine::SimTime;

/// "No node" / "no index".
pub const NONE: u32 = u32::MAX;

/// A reference to a pod slot at one generation; events carry it so that events about a
/// pod that has since been replaced or restarted are recognised as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    /// Slot in [`ClusterState::pods`].
    pub slot: u32,
    /// Generation of the slot's occupant when the event was scheduled.
    pub gen: u32,
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// The slot is unused.
    Free,
    /// The API server is calling the injection webhook for it.
    Creating,
    /// Created, waiting for a node.
    Pending,
    /// Bound to a node, containers starting.
    Starting,
    /// Containers running; istio-agent fetching its certificate.
    WaitingCert,
    /// Certificate in hand (or not injected); becoming ready.
    Warming,
    /// Ready.
    Ready,
    /// The proxy was killed; the kubelet waits out CrashLoopBackOff.
    Backoff,
    /// Being deleted (evicted or restarted); still holds its node slot.
    Terminating,
}

impl PodPhase {
    fn is_pending(self) -> bool {
        matches!(
            self,
            PodPhase::Creating | PodPhase::Pending | PodPhase::Starting
        )
    }
}

/// One pod: 32 bytes, two to a cache line (at 20 M pods the slots are the run's largest
/// memory and every pod event's first cache miss), so the counters are 16-bit.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Bumped whenever the slot gets a new pod or the pod's containers restart.
    pub gen: u32,
    /// Owning workload (0 is istiod; a cluster has at most
    /// [`crate::scenario::limits::MAX_WORKLOADS_PER_CLUSTER`]).
    pub workload: u16,
    /// Position in the node's pod list (a node holds at most
    /// [`crate::scenario::limits::MAX_PODS_PER_NODE`]).
    pub node_pos: u16,
    /// Node it is bound to, or [`NONE`].
    pub node: u32,
    /// Phase.
    pub phase: PodPhase,
    /// Whether it carries the sidecar.
    pub injected: bool,
    /// Container restarts by the kubelet (saturating; the cluster's `pod_restarts`
    /// counts them all).
    pub restarts: u16,
    /// When its containers last started.
    pub started_at: SimTime,
    /// istio-agent: failed certificate attempts since the agent started (saturating;
    /// its back-off is capped long before).
    pub agent_failures: u16,
    /// Pods the cluster created before this one (its name in `--events`/`--trace`).
    pub serial: u32,
}

impl Pod {
    /// An unused slot's pod (for tests elsewhere in the model).
    #[cfg(test)]
    pub fn default_for_tests() -> Pod {
        Pod::free()
    }

    fn free() -> Pod {
        Pod {
            gen: 0,
            workload: 0,
            node: NONE,
            node_pos: 0,
            phase: PodPhase::Free,
            injected: false,
            restarts: 0,
            started_at: SimTime::ZERO,
            agent_failures: 0,
            serial: 0,
        }
    }

    /// Counts toward "crashloop": restarted at least once and not ready.
    pub fn crashlooping(&self) -> bool {
        self.restarts > 0
            && matches!(
                self.phase,
                PodPhase::Backoff | PodPhase::WaitingCert | PodPhase::Warming
            )
    }
}

/// Node life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Launched, not yet Ready.
    Launching,
    /// Ready and schedulable.
    Ready,
    /// Cordoned and being drained.
    Draining,
    /// Gone.
    Terminated,
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Node group index.
    pub group: u32,
    /// Runs the target AMI.
    pub new_ami: bool,
    /// State.
    pub state: NodeState,
    /// Pod capacity.
    pub capacity: u32,
    /// Pods bound to it (including terminating ones).
    pub pods: Vec<u32>,
    /// When it was cordoned.
    pub cordoned_at: SimTime,
    /// Bumped to invalidate a scheduled drain tick.
    pub tick_gen: u32,
    /// Whether its node group's update failed on it.
    pub eviction_failed: bool,
}

/// A workload's ReplicaSet controller state.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Desired replicas.
    pub desired: u32,
    /// Replicas held back by a paced restart: the ReplicaSet keeps `desired - held`.
    pub held: u32,
    /// Pods that count toward the ReplicaSet (everything but Terminating and Free).
    pub active: u32,
    /// Ready pods.
    pub ready: u32,
    /// Max unavailable under the PDB; `None` = no PDB.
    pub pdb_max_unavailable: Option<u32>,
    /// Injected with the sidecar.
    pub injected: bool,
    /// Scheduled to running containers.
    pub container_start: SimTime,
    /// Running (with certificate) to ready.
    pub ready_delay: SimTime,
    /// Node group its pods are pinned to (node affinity), if any.
    pub node_group: Option<u32>,
    /// Slow-start: creates still outstanding in the current batch.
    pub batch_outstanding: u32,
    /// Slow-start: a create in the current batch failed.
    pub batch_failed: bool,
    /// Slow-start: size of the next batch.
    pub next_batch: u32,
    /// Consecutive failed syncs (requeue back-off exponent).
    pub requeues: u32,
    /// A requeue is scheduled.
    pub sync_scheduled: bool,
}

impl Workload {
    /// Whether evicting a pod (ready or not) is allowed by the PDB now.
    pub fn eviction_allowed(&self, pod_ready: bool) -> bool {
        let Some(max_unavailable) = self.pdb_max_unavailable else {
            return true;
        };
        let desired_healthy = self.desired.saturating_sub(max_unavailable);
        if pod_ready {
            self.ready > desired_healthy
        } else {
            // unhealthyPodEvictionPolicy IfHealthyBudget (the default).
            self.ready >= desired_healthy
        }
    }
}

/// Counters over a cluster's pods, kept exact by `set_phase`.
#[derive(Debug, Clone, Default)]
pub struct PodCounts {
    /// Pods ready.
    pub ready: u32,
    /// Pods being created, unscheduled or starting.
    pub pending: u32,
    /// Pods waiting out CrashLoopBackOff.
    pub backoff: u32,
    /// Pods restarted at least once and not ready.
    pub crashloop: u32,
    /// Peak of `crashloop`.
    pub crashloop_peak: u32,
    /// Integral of `crashloop` over time (pod-seconds).
    pub crashloop_pod_seconds: f64,
    /// Time of the last crashloop change.
    pub crashloop_since: SimTime,
}

/// A cluster's state.
#[derive(Debug, Clone)]
pub struct ClusterState {
    /// Pod slots.
    pub pods: Vec<Pod>,
    /// Free slots, reused last-in first-out.
    pub free_pods: Vec<u32>,
    /// Nodes (terminated ones stay, with no pods).
    pub nodes: Vec<Node>,
    /// Workloads; 0 is istiod.
    pub workloads: Vec<Workload>,
    /// Schedulable nodes of each node group by free slots.
    pub schedulable: Vec<super::schedulable::FreeIndex>,
    /// Pods waiting for a node, first-in first-out: one queue per node group for pods
    /// pinned to it, and a last one for pods that may go anywhere.
    pub unscheduled: Vec<VecDeque<(u32, u32)>>,
    /// Counters, kept exact by `set_phase`.
    counts: PodCounts,
    /// Pods created so far (the next pod's serial).
    created: u32,
    /// Nodes not terminated: [old AMI, new AMI] (kept by `add_node` and
    /// `terminate_node`, so that a sample does not scan the nodes).
    live_nodes: [u32; 2],
    /// Phase spans of sampled pods, with `--trace`.
    trace: Option<Box<super::journal::PhaseTrace>>,
    /// The kubelet's restart back-off of the pods whose container was killed or exited,
    /// by slot (beside the slots: few pods ever restart, and the slot stays 32 bytes).
    pub backoffs: std::collections::BTreeMap<u32, crate::control::kubelet::RestartBackoff>,
}

impl ClusterState {
    /// An empty cluster with `groups` node groups.
    pub fn new(groups: usize) -> Self {
        ClusterState {
            pods: Vec::new(),
            free_pods: Vec::new(),
            nodes: Vec::new(),
            workloads: Vec::new(),
            schedulable: vec![Default::default(); groups],
            unscheduled: vec![VecDeque::new(); groups + 1],
            counts: PodCounts::default(),
            created: 0,
            live_nodes: [0; 2],
            trace: None,
            backoffs: Default::default(),
        }
    }

    /// The pod counters.
    pub fn counts(&self) -> &PodCounts {
        &self.counts
    }

    /// Adds a node (Launching) and returns its index.
    pub fn add_node(&mut self, group: u32, capacity: u32, new_ami: bool) -> u32 {
        self.live_nodes[new_ami as usize] += 1;
        self.nodes.push(Node {
            group,
            new_ami,
            state: NodeState::Launching,
            capacity,
            // Sized once: growing to 58 pods from empty took five reallocations a node.
            pods: Vec::with_capacity(capacity as usize),
            cordoned_at: SimTime::ZERO,
            tick_gen: 0,
            eviction_failed: false,
        });
        (self.nodes.len() - 1) as u32
    }

    /// The node with the most free room among schedulable nodes of `group` (any group
    /// when `None`; ties go to the lower node index), if one has room.
    pub fn best_node(&self, group: Option<u32>) -> Option<u32> {
        // Most free first, then the lower node (across groups too).
        let key = |(free, node): (u32, u32)| (u32::MAX - free, node);
        match group {
            Some(g) => self.schedulable[g as usize].best(),
            None => self
                .schedulable
                .iter()
                .filter_map(|s| s.best())
                .min_by_key(|&b| key(b)),
        }
        .map(|(_, node)| node)
    }

    /// Queues a pod for scheduling.
    pub fn enqueue_unscheduled(&mut self, slot: u32) {
        let p = &self.pods[slot as usize];
        let q = match self.workloads[p.workload as usize].node_group {
            Some(g) => g as usize,
            None => self.unscheduled.len() - 1,
        };
        self.unscheduled[q].push_back((slot, p.gen));
    }

    /// Desired pods over all workloads.
    pub fn desired_pods(&self) -> u32 {
        self.workloads.iter().map(|w| w.desired).sum()
    }

    /// The slots of the pods `chosen` picks, in slot order.
    pub fn pod_slots(&self, chosen: impl Fn(&Pod) -> bool) -> Vec<u32> {
        self.pods
            .iter()
            .enumerate()
            .filter(|(_, p)| chosen(p))
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Prefetches pod slot `slot` (a hint; see [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch_pod(&self, slot: u32) {
        if let Some(p) = self.pods.get(slot as usize) {
            crate::engine::prefetch(p);
        }
    }

    /// Whether `r` still names the same pod.
    #[inline]
    pub fn is_current(&self, r: PodRef) -> bool {
        self.pods[r.slot as usize].gen == r.gen
    }

    /// A reference to the pod in `slot` now.
    #[inline]
    pub fn pod_ref(&self, slot: u32) -> PodRef {
        PodRef {
            slot,
            gen: self.pods[slot as usize].gen,
        }
    }

    /// Takes a free slot for a new pod of `workload`, in phase `Creating`.
    pub fn new_pod(&mut self, now: SimTime, workload: u32, injected: bool) -> PodRef {
        let slot = match self.free_pods.pop() {
            Some(s) => s,
            None => {
                self.pods.push(Pod::free());
                (self.pods.len() - 1) as u32
            }
        };
        let p = &mut self.pods[slot as usize];
        p.gen = p.gen.wrapping_add(1);
        // Validated: at most MAX_WORKLOADS_PER_CLUSTER workloads, istiod being 0.
        p.workload = u16::try_from(workload).expect("validated workload count");
        p.node = NONE;
        p.injected = injected;
        p.restarts = 0;
        p.agent_failures = 0;
        p.serial = self.created;
        self.backoffs.remove(&slot);
        self.created = self.created.wrapping_add(1);
        self.workloads[workload as usize].active += 1;
        self.set_phase(now, slot, PodPhase::Creating);
        self.pod_ref(slot)
    }

    /// Changes a pod's phase, keeping every counter exact.
    pub fn set_phase(&mut self, now: SimTime, slot: u32, phase: PodPhase) {
        let pod = &self.pods[slot as usize];
        let old = pod.phase;
        let was_crashloop = pod.crashlooping();
        let wl = pod.workload as usize;
        if old == phase {
            return;
        }
        let c = &mut self.counts;
        if old == PodPhase::Ready {
            c.ready -= 1;
            self.workloads[wl].ready -= 1;
        }
        if old.is_pending() {
            c.pending -= 1;
        }
        if old == PodPhase::Backoff {
            c.backoff -= 1;
        }
        if phase == PodPhase::Ready {
            c.ready += 1;
            self.workloads[wl].ready += 1;
        }
        if phase.is_pending() {
            c.pending += 1;
        }
        if phase == PodPhase::Backoff {
            c.backoff += 1;
        }
        let leaving = matches!(phase, PodPhase::Terminating | PodPhase::Free);
        if leaving && !matches!(old, PodPhase::Terminating | PodPhase::Free) {
            self.workloads[wl].active -= 1;
        }
        self.pods[slot as usize].phase = phase;
        if let Some(t) = self.trace.as_deref_mut() {
            t.note(now, slot, &self.pods[slot as usize], phase);
        }
        let is_crashloop = self.pods[slot as usize].crashlooping();
        if was_crashloop != is_crashloop {
            self.note_crashloop_change(now, if is_crashloop { 1 } else { -1 });
        }
    }

    /// Starts tracing the phases of a sample of pods (`--trace`).
    pub fn trace_phases(&mut self, cluster: u32) {
        let mut t = Box::new(super::journal::PhaseTrace::new(cluster));
        for (slot, p) in self.pods.iter().enumerate() {
            t.adopt(SimTime::ZERO, slot as u32, p);
        }
        self.trace = Some(t);
    }

    /// The traced phase spans, the open ones closed at `end` (empty without a trace).
    pub fn take_phase_spans(&mut self, end: SimTime) -> Vec<super::journal::RawSpan> {
        self.trace
            .as_mut()
            .map(|t| t.finish(end))
            .unwrap_or_default()
    }

    /// Records a restart (which may make a pod count as crashlooping).
    pub fn add_restart(&mut self, now: SimTime, slot: u32) {
        let was = self.pods[slot as usize].crashlooping();
        let p = &mut self.pods[slot as usize];
        p.restarts = p.restarts.saturating_add(1);
        if !was && self.pods[slot as usize].crashlooping() {
            self.note_crashloop_change(now, 1);
        }
    }

    fn note_crashloop_change(&mut self, now: SimTime, delta: i32) {
        let c = &mut self.counts;
        c.crashloop_pod_seconds +=
            c.crashloop as f64 * (now.saturating_sub(c.crashloop_since)).as_secs_f64();
        c.crashloop_since = now;
        c.crashloop = (c.crashloop as i64 + delta as i64) as u32;
        c.crashloop_peak = c.crashloop_peak.max(c.crashloop);
    }

    /// Brings the crashloop integral up to `now` (for reporting).
    pub fn crashloop_pod_seconds_at(&self, now: SimTime) -> f64 {
        let c = &self.counts;
        c.crashloop_pod_seconds
            + c.crashloop as f64 * now.saturating_sub(c.crashloop_since).as_secs_f64()
    }

    /// Free pod slots on a node.
    pub fn node_free(&self, node: u32) -> u32 {
        let n = &self.nodes[node as usize];
        n.capacity.saturating_sub(n.pods.len() as u32)
    }

    /// Adds a node to the schedulable set (it must be Ready).
    pub fn mark_schedulable(&mut self, node: u32) {
        let free = self.node_free(node);
        let g = self.nodes[node as usize].group as usize;
        self.schedulable[g].insert(node, free);
    }

    /// Whether a node is in the schedulable set.
    pub fn is_listed_schedulable(&self, node: u32) -> bool {
        let g = self.nodes[node as usize].group as usize;
        self.schedulable[g].contains(node, self.node_free(node))
    }

    /// Removes a node from the schedulable set.
    pub fn mark_unschedulable(&mut self, node: u32) {
        let free = self.node_free(node);
        let g = self.nodes[node as usize].group as usize;
        self.schedulable[g].remove(node, free);
    }

    /// Binds a pod to a node.
    pub fn bind(&mut self, slot: u32, node: u32) {
        let schedulable = self.nodes[node as usize].state == NodeState::Ready;
        if schedulable {
            self.mark_unschedulable(node);
        }
        let n = &mut self.nodes[node as usize];
        self.pods[slot as usize].node = node;
        // A node holds at most MAX_PODS_PER_NODE (validated).
        self.pods[slot as usize].node_pos = n.pods.len() as u16;
        n.pods.push(slot);
        if schedulable {
            self.mark_schedulable(node);
        }
    }

    /// Unbinds a pod from its node.
    pub fn unbind(&mut self, slot: u32) {
        let node = self.pods[slot as usize].node;
        if node == NONE {
            return;
        }
        let schedulable = self.nodes[node as usize].state == NodeState::Ready;
        if schedulable {
            self.mark_unschedulable(node);
        }
        let pos = self.pods[slot as usize].node_pos as usize;
        let n = &mut self.nodes[node as usize];
        n.pods.swap_remove(pos);
        if let Some(&moved) = n.pods.get(pos) {
            self.pods[moved as usize].node_pos = pos as u16;
        }
        self.pods[slot as usize].node = NONE;
        if schedulable {
            self.mark_schedulable(node);
        }
    }

    /// Returns a terminated pod's slot to the free list.
    pub fn release(&mut self, now: SimTime, slot: u32) {
        self.unbind(slot);
        self.set_phase(now, slot, PodPhase::Free);
        let p = &mut self.pods[slot as usize];
        p.gen = p.gen.wrapping_add(1);
        self.free_pods.push(slot);
    }

    /// Nodes not terminated, split into (old AMI, new AMI).
    pub fn node_counts(&self) -> (u32, u32) {
        (self.live_nodes[0], self.live_nodes[1])
    }

    /// [`node_counts`](Self::node_counts) by scanning the nodes (the invariants check
    /// the counters against it).
    #[cfg(test)]
    pub fn node_counts_scanned(&self) -> (u32, u32) {
        let mut counts = [0; 2];
        for n in &self.nodes {
            if n.state != NodeState::Terminated {
                counts[n.new_ami as usize] += 1;
            }
        }
        (counts[0], counts[1])
    }

    /// The node is gone (its pods have left it).
    pub fn terminate_node(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        if n.state != NodeState::Terminated {
            n.state = NodeState::Terminated;
            self.live_nodes[n.new_ami as usize] -= 1;
            // A terminated node stays (its index is its name) but holds no pod again:
            // its list's memory goes (at 400 000 nodes, ~90 MB).
            if n.pods.is_empty() {
                n.pods = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// A pod slot is 32 bytes (20 M pods: ~0.7 GiB of slots); `src/budget.rs` counts on
    /// it. The dead `backoff_level` field made it 56, the kubelet's back-off in the slot
    /// (now in `ClusterState::backoffs`) 48, 32-bit counters 40.
    #[test]
    fn a_pod_slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<super::Pod>(), 32);
    }
}
