//! The fleet's state: clusters, each owning its components, and the fleet-level
//! components (the CAs, the CSRs in flight, the rollout, the recorder).
//!
//! Fields are private. The event handlers (`pods`, `nodes`, `certs`, `rollout`) reach a
//! component through the methods of its owner, and change another component's state
//! only by telling its owner what happened ([`Cluster::note_csr_answer`],
//! [`Cluster::note_trigger`]). What reads the whole state — construction, sampling and
//! the summary, the test-only invariants — lives in the child modules [`build`],
//! [`observe`] and `invariants`.
//!
//! A new component (an apiserver, istiod's RA, a signer) is a type in its own file under
//! `model/` with `&mut self` methods, a field of [`Cluster`] (or of [`Fleet`] when it is
//! fleet-level, like the CAs) built in [`build`], and a handler module that goes through
//! those methods.

pub mod build;
#[cfg(test)]
mod invariants;
pub mod issuers;
pub mod observe;

use crate::ca::{CaEvent, CaOutcome, CertificateAuthority};
use crate::control::client::TokenBucket;
use crate::engine::{Context, Partitions, RngStream, SimTime};
use crate::metrics::Recorder;
use crate::scenario::{ClusterSpec, Scenario};

use super::certs::Agents;
use super::event::Event;
use super::istiod::Istiod;
use super::journal::{Journal, Recording};
use super::nodes::NodeUpgrade;
use super::pacing::{AimdWindow, Pacer};
use super::probes::ProbeDeadlines;
use super::ra::CertPath;
use super::rollout::RolloutState;
use super::state::ClusterState;
use observe::CaStats;

/// Counters of one cluster that are not pod phases (what the summary reports).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Kubelet restarts.
    pub pod_restarts: u64,
    /// Drain evictions.
    pub evictions: u64,
    /// CSR objects created.
    pub csr_requests: u64,
    /// istiod gave up waiting.
    pub csr_timeouts: u64,
    /// Refused by istiod's limiter (would exceed the wait).
    pub csr_rate_limited: u64,
    /// Agent attempts refused because no istiod was ready.
    pub csr_no_istiod: u64,
    /// Signings nobody waited for any more.
    pub csr_wasted_signings: u64,
    /// Certificates delivered.
    pub certs_issued: u64,
    /// Pod creations the injection webhook failed.
    pub webhook_failures: u64,
    /// Sampled time with no ready istiod replica (ns).
    pub istiod_unready_ns: u64,
}

/// Counters over the final window (last 10 % of the horizon) for `metastable`.
#[derive(Debug, Clone, Default)]
struct EndWindow {
    /// Certificate requests answered (delivered, or failed) in the window.
    attempts: u64,
    /// Of which delivered.
    delivered: u64,
    /// Evictions and node launches in the window (a trigger still acting).
    triggers: u64,
}

/// Whether a cluster is healthy and since when.
#[derive(Debug, Clone)]
struct Health {
    healthy: bool,
    since: SimTime,
    /// Lowest sampled ready fraction.
    min_ready_fraction: f64,
}

/// One cluster and its components.
pub struct Cluster {
    index: u32,
    /// The Kubernetes objects: pods, nodes, workloads.
    objects: ClusterState,
    /// The control plane: ready replicas and their client limiters, the injection queue.
    istiod: Istiod,
    /// The certificate path: apiserver, istiod's flows, CSR objects, signer.
    cert: CertPath,
    /// The kubelets' pod-worker requeue jitter.
    kubelet_rng: RngStream,
    /// istio-agent's rotation jitter.
    rotation_rng: RngStream,
    /// The node groups' update.
    upgrade: NodeUpgrade,
    /// The ReplicaSet controller's overall retry bucket (client-go
    /// `DefaultControllerRateLimiter`: 10 qps, 100 burst), shared by its ReplicaSets.
    replicaset_retries: TokenBucket,
    /// Eviction pacer.
    pacer: Pacer,
    /// AIMD observation window.
    aimd: AimdWindow,
    /// The agents of the injected pods.
    agents: Agents,
    /// The proxies' startup-probe deadlines.
    probes: ProbeDeadlines,
    counters: Counters,
    window: EndWindow,
    health: Health,
}

impl Cluster {
    /// Its index in the scenario.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The ReplicaSet controller's overall retry bucket.
    pub fn replicaset_retries_mut(&mut self) -> &mut TokenBucket {
        &mut self.replicaset_retries
    }

    /// Pods, nodes and workloads.
    pub fn objects(&self) -> &ClusterState {
        &self.objects
    }

    /// Pods, nodes and workloads, to change.
    pub fn objects_mut(&mut self) -> &mut ClusterState {
        &mut self.objects
    }

    /// istiod.
    pub fn istiod(&self) -> &Istiod {
        &self.istiod
    }

    /// istiod, to change.
    pub fn istiod_mut(&mut self) -> &mut Istiod {
        &mut self.istiod
    }

    /// The certificate path.
    pub fn cert(&self) -> &CertPath {
        &self.cert
    }

    /// Prefetches the pod slot and rotation state of the cluster's next rotation due
    /// (a hint; see [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch_next_rotation(&self) {
        if let Some(slot) = self.cert.prefetch_rotation() {
            self.objects.prefetch_pod(slot);
        }
    }

    /// The certificate path, to change.
    pub fn cert_mut(&mut self) -> &mut CertPath {
        &mut self.cert
    }

    /// The kubelets' requeue jitter stream.
    pub fn kubelet_rng(&mut self) -> &mut RngStream {
        &mut self.kubelet_rng
    }

    /// The rotation jitter stream.
    pub fn rotation_rng(&mut self) -> &mut RngStream {
        &mut self.rotation_rng
    }

    /// The node groups' update.
    pub fn upgrade(&self) -> &NodeUpgrade {
        &self.upgrade
    }

    /// The node groups' update, to change.
    pub fn upgrade_mut(&mut self) -> &mut NodeUpgrade {
        &mut self.upgrade
    }

    /// The eviction pacer.
    pub fn pacer_mut(&mut self) -> &mut Pacer {
        &mut self.pacer
    }

    /// The counters the summary reports.
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Healthy now: every workload at its desired ready replicas, nothing in back-off.
    pub fn healthy(&self) -> bool {
        self.health.healthy
    }

    /// A certificate request was answered, delivered or not: the AIMD controller and the
    /// end window count it.
    pub fn note_csr_answer(&mut self, delivered: bool, in_end_window: bool) {
        self.aimd.attempts += 1;
        if !delivered {
            self.aimd.errors += 1;
        }
        if in_end_window {
            self.window.attempts += 1;
            if delivered {
                self.window.delivered += 1;
            }
        }
    }

    /// Something that drives load happened (an eviction, a node launch).
    pub fn note_trigger(&mut self, in_end_window: bool) {
        if in_end_window {
            self.window.triggers += 1;
        }
    }

    /// The AIMD window so far, starting a new one.
    pub fn take_aimd_window(&mut self) -> AimdWindow {
        std::mem::take(&mut self.aimd)
    }

    /// The agents of the injected pods.
    pub fn agents_mut(&mut self) -> &mut Agents {
        &mut self.agents
    }

    /// The proxies' startup-probe deadlines.
    pub fn probes_mut(&mut self) -> &mut ProbeDeadlines {
        &mut self.probes
    }
}

/// The partitions of the fleet's events (see [`crate::engine`]): each cluster is one,
/// except the clusters that reach a fleet-level CA or issuer (`ca = ...`, a Certificate
/// set's `issuer`): those share one partition with the CAs' own events, since the CAs'
/// queues, quotas and streams serve them all in one order. Partition 0 is that shared
/// one (empty when no cluster shares); the others follow in cluster order.
pub fn partitions(sc: &Scenario) -> Partitions {
    let mut of_key = Vec::with_capacity(sc.clusters.len() + 1);
    of_key.push(0); // super::event::SHARED_KEY
    of_key.extend(cluster_partitions(sc));
    Partitions::new(of_key)
}

/// Whether every cluster is in one partition (one cluster, or all sharing fleet-level
/// CAs): windows would only add their bookkeeping.
pub fn clusters_in_one_partition(sc: &Scenario) -> bool {
    let mut parts = cluster_partitions(sc);
    match parts.next() {
        None => true,
        Some(first) => parts.all(|p| p == first),
    }
}

/// The partition of each cluster (see [`partitions`]).
fn cluster_partitions(sc: &Scenario) -> impl Iterator<Item = u32> + '_ {
    let mut next = 0;
    sc.clusters.iter().map(move |spec| {
        let shared = spec.ca.is_some() || spec.certificates.iter().any(|c| c.issuer.is_some());
        if shared {
            0
        } else {
            next += 1;
            next
        }
    })
}

/// The cluster of each partition that has exactly one (`u32::MAX` for the shared one).
fn partition_clusters(sc: &Scenario) -> Vec<u32> {
    let mut out = vec![u32::MAX];
    for (cluster, p) in cluster_partitions(sc).enumerate() {
        if p != 0 {
            debug_assert_eq!(p as usize, out.len());
            out.push(cluster as u32);
        }
    }
    out
}

/// The whole fleet.
pub struct Fleet<'s> {
    sc: &'s Scenario,
    clusters: Vec<Cluster>,
    cas: Vec<CertificateAuthority>,
    ca_stats: Vec<CaStats>,
    issuers: issuers::Issuers,
    rollout: RolloutState,
    recorder: Recorder,
    /// Start of the end window (the last 10 % of the horizon).
    window_start: SimTime,
    outcomes: Vec<CaOutcome>,
    /// Milestones, and the records of `--events` and `--trace`.
    journal: Journal,
    /// cert-manager's Certificate controllers per cluster (`None`: no Certificates).
    certs: Vec<Option<super::certificates::ClusterCerts>>,
    /// The cluster of each partition (`u32::MAX`: the shared one), for the kernel's
    /// prefetch of a partition's state.
    partition_clusters: Vec<u32>,
}

impl<'s> Fleet<'s> {
    /// The scenario.
    #[inline]
    pub fn scenario(&self) -> &'s Scenario {
        self.sc
    }

    /// A cluster's spec.
    #[inline]
    pub fn spec(&self, cluster: u32) -> &'s ClusterSpec {
        &self.sc.clusters[cluster as usize]
    }

    /// A cluster's Certificate controllers, if it has Certificates.
    pub fn certs(&self, cluster: u32) -> Option<&super::certificates::ClusterCerts> {
        self.certs.get(cluster as usize).and_then(|c| c.as_ref())
    }

    /// ... to change.
    pub fn certs_mut(&mut self, cluster: u32) -> Option<&mut super::certificates::ClusterCerts> {
        self.certs
            .get_mut(cluster as usize)
            .and_then(|c| c.as_mut())
    }

    /// The clusters, in scenario order.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// The clusters, to change.
    pub fn clusters_mut(&mut self) -> &mut [Cluster] {
        &mut self.clusters
    }

    /// Number of clusters.
    pub fn cluster_count(&self) -> u32 {
        self.clusters.len() as u32
    }

    /// A cluster.
    #[inline]
    pub fn cluster(&self, cluster: u32) -> &Cluster {
        &self.clusters[cluster as usize]
    }

    /// Prefetches the state a partition's first events read, a level a step (a hint;
    /// see [`crate::engine::Model::prefetch_partition`]): its cluster's own struct; then
    /// its workloads and the head of its rotation timer; then the pod slot and rotation
    /// state of that rotation (an idle cluster's window is mostly rotations, and at
    /// 2 000 clusters every one of these missed the cache).
    #[inline]
    pub fn prefetch_partition(&self, partition: u32, ahead: u32) {
        let Some(&cluster) = self.partition_clusters.get(partition as usize) else {
            return;
        };
        let Some(c) = self.clusters.get(cluster as usize) else {
            return;
        };
        match ahead {
            1 => c.prefetch_next_rotation(),
            2 => {
                if let Some(w) = c.objects.workloads.first() {
                    crate::engine::prefetch(w);
                }
                c.cert.prefetch_rotation_head();
            }
            _ => crate::engine::prefetch_all(c),
        }
    }

    /// A cluster, to change.
    #[inline]
    pub fn cluster_mut(&mut self, cluster: u32) -> &mut Cluster {
        &mut self.clusters[cluster as usize]
    }

    /// A certificate authority.
    pub fn ca(&self, ca: usize) -> &CertificateAuthority {
        &self.cas[ca]
    }

    /// A certificate authority, to change.
    pub fn ca_mut(&mut self, ca: usize) -> &mut CertificateAuthority {
        &mut self.cas[ca]
    }

    /// Number of certificate authorities.
    pub fn ca_count(&self) -> usize {
        self.cas.len()
    }

    /// The issuers.
    pub fn issuers(&self) -> &issuers::Issuers {
        &self.issuers
    }

    /// The rollout.
    pub fn rollout(&self) -> &RolloutState {
        &self.rollout
    }

    /// The rollout, to change.
    pub fn rollout_mut(&mut self) -> &mut RolloutState {
        &mut self.rollout
    }

    /// Whether `now` lies in the end window that `metastable` is judged on.
    pub fn in_end_window(&self, now: SimTime) -> bool {
        now >= self.window_start
    }

    /// Re-evaluates a cluster's health after a change.
    pub fn check_health(&mut self, now: SimTime, cluster: u32) {
        let c = &mut self.clusters[cluster as usize];
        let k = c.objects.counts();
        let healthy = k.ready >= c.objects.desired_pods() && k.crashloop == 0 && k.backoff == 0;
        if healthy != c.health.healthy {
            c.health.healthy = healthy;
            if healthy {
                c.health.since = now;
            }
        }
    }

    /// Updates a CA's slowdown after the Failed CSR objects of its clusters changed.
    pub fn sync_failed_objects(&mut self, ctx: &mut Context<Event>, ca: usize) {
        let total: u64 = self
            .clusters
            .iter()
            .filter(|c| self.sc.clusters[c.index as usize].ca == Some(ca))
            .map(|c| c.cert.csrs().counts().failed)
            .sum();
        self.cas[ca].set_failed_objects(total, ctx);
    }

    /// Records the load of a CA after a request reached it (for its peak).
    pub fn note_ca_load(&mut self, ca: usize) {
        let load = self.cas[ca].queue_len() + self.cas[ca].in_service() as u64;
        let stats = &mut self.ca_stats[ca];
        stats.peak = stats.peak.max(load);
    }

    /// A CA's own event: the CA handles it, the certificate path its outcomes.
    pub fn handle_ca(&mut self, e: CaEvent, ctx: &mut Context<Event>) {
        let ca = e.ca as usize;
        let mut out = std::mem::take(&mut self.outcomes);
        self.cas[ca].handle(e.kind, ctx, &mut out);
        for o in out.drain(..) {
            if let CaOutcome::Served { request, .. } = o {
                self.usl_served(ctx, request);
            }
        }
        self.outcomes = out;
    }

    /// Turns on the records of `--events` and `--trace` (before the run starts).
    pub fn set_recording(&mut self, rec: Recording) {
        self.journal = Journal::new(self.clusters.len(), rec);
        if rec.trace {
            for c in &mut self.clusters {
                let i = c.index;
                c.objects.trace_phases(i);
            }
        }
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The journal, to add to.
    #[inline]
    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// The journal, taken out (at the end of a run).
    pub fn take_journal(&mut self) -> Journal {
        std::mem::take(&mut self.journal)
    }

    /// The recorder, emptied (at the end of a run).
    pub fn take_recorder(&mut self) -> Recorder {
        std::mem::take(&mut self.recorder)
    }

    /// Replaces the recorder (before the run: to stream the time series, or keep only
    /// the fleet rows).
    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = recorder;
    }

    /// Streams or drops the samples just taken (see [`Recorder::settle`]).
    pub fn settle_samples(&mut self) {
        self.recorder.settle();
    }
}
