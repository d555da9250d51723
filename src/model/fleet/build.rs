//! Construction: the fleet in its steady state at time zero — every node Ready on the
//! old AMI, every pod Ready with a certificate — and the initial events.

use crate::ca::CertificateAuthority;
use crate::control::client::TokenBucket;
use crate::engine::{Context, SimTime};
use crate::metrics::Recorder;
use crate::scenario::{ClusterSpec, Pacing, Scenario};

use super::super::certs::{csr_cleaner_period, Agents};
use super::super::event::Event;
use super::super::istiod::Istiod;
use super::super::nodes::NodeUpgrade;
use super::super::pacing::{AimdWindow, Pacer};
use super::super::pods;
use super::super::ra::{self, CertPath};
use super::super::rollout::{self, RolloutState};
use super::super::state::{ClusterState, NodeState, PodPhase};
use super::super::streams::Role;
use super::observe::CaStats;
use super::{Cluster, Counters, EndWindow, Fleet, Health};

impl<'s> Fleet<'s> {
    /// Builds the fleet in its steady state at time zero.
    pub fn new(sc: &'s Scenario, seed: u64) -> Self {
        let cas = sc
            .cas
            .iter()
            .enumerate()
            .map(|(i, ca)| {
                CertificateAuthority::new(
                    i as u32,
                    ca.config,
                    Role::CaService.stream(seed, &[&ca.name]),
                )
            })
            .collect();
        let clusters: Vec<Cluster> = sc
            .clusters
            .iter()
            .enumerate()
            .map(|(i, spec)| build_cluster(sc, i as u32, spec, seed))
            .collect();
        let mut clusters = clusters;
        let certs = super::super::certificates::build(sc, &mut clusters);
        Fleet {
            sc,
            clusters,
            certs,
            cas,
            ca_stats: vec![CaStats::default(); sc.cas.len()],
            issuers: super::issuers::Issuers::new(sc, seed),
            rollout: RolloutState::new(sc),
            recorder: Recorder::default(),
            window_start: SimTime(sc.horizon.as_nanos() / 10 * 9),
            outcomes: Vec::new(),
            journal: super::Journal::new(sc.clusters.len(), Default::default()),
            partition_clusters: super::partition_clusters(sc),
        }
    }

    /// Schedules the initial events: the first sample, csrcleaner, the AIMD tick, the
    /// first wave and the timed interventions.
    pub fn start(&mut self, ctx: &mut Context<Event>) {
        ctx.schedule_at(SimTime::ZERO, Event::Sample);
        ctx.schedule_at(csr_cleaner_period(self.sc), Event::CsrCleaner);
        if let Pacing::Aimd { interval, .. } = self.sc.rollout.pacing {
            ctx.schedule_at(interval, Event::AimdTick);
        }
        rollout::schedule_start(self, ctx);
        for c in 0..self.cluster_count() {
            ra::start_signer(self, ctx, c);
        }
        super::super::certificates::start(self, ctx);
        ra::schedule_initial_rotations(self, ctx);
    }
}

fn build_cluster(sc: &Scenario, index: u32, spec: &ClusterSpec, seed: u64) -> Cluster {
    let mut objects = ClusterState::new(spec.node_groups.len());
    // Workload 0 is istiod.
    objects
        .workloads
        .push(pods::istiod_workload(spec, spec.istiod.replicas));
    for w in &spec.workloads {
        objects.workloads.push(pods::workload_from_spec(w));
    }
    for (g, group) in spec.node_groups.iter().enumerate() {
        for _ in 0..group.nodes {
            let n = objects.add_node(g as u32, group.max_pods, false);
            objects.nodes[n as usize].state = NodeState::Ready;
            objects.mark_schedulable(n);
        }
    }
    let name = spec.name.as_str();
    let mut istiod = Istiod::new(
        Role::IstiodPick.stream(seed, &[name]),
        Role::IstiodReflector.stream(seed, &[name]),
    );
    for w in 0..objects.workloads.len() as u32 {
        let desired = objects.workloads[w as usize].desired;
        let injected = objects.workloads[w as usize].injected;
        for _ in 0..desired {
            let pod = objects.new_pod(SimTime::ZERO, w, injected);
            let group = objects.workloads[w as usize].node_group;
            let node = objects.best_node(group).expect("validated: pods fit");
            objects.bind(pod.slot, node);
            objects.set_phase(SimTime::ZERO, pod.slot, PodPhase::Ready);
            if w == 0 {
                istiod.add_ready(pod.slot, &spec.istiod, SimTime::ZERO);
            }
        }
    }
    Cluster {
        index,
        objects,
        istiod,
        cert: CertPath::new(index, spec, sc, Role::SignerRetry.stream(seed, &[name])),
        kubelet_rng: Role::KubeletSync.stream(seed, &[name]),
        rotation_rng: Role::RotationJitter.stream(seed, &[name]),
        upgrade: NodeUpgrade::new(
            spec.node_groups
                .iter()
                .map(|g| Role::NodeLaunch.stream(seed, &[name, &g.name]))
                .collect(),
        ),
        replicaset_retries: TokenBucket::new(
            spec.kubernetes.requeue_rate_per_s,
            spec.kubernetes.requeue_burst,
        ),
        pacer: Pacer::new(&sc.rollout.pacing, SimTime::ZERO),
        aimd: AimdWindow::default(),
        agents: Agents::new(Role::AgentJitter.stream(seed, &[name])),
        probes: Default::default(),
        counters: Counters::default(),
        window: EndWindow::default(),
        health: Health {
            healthy: true,
            since: SimTime::ZERO,
            min_ready_fraction: 1.0,
        },
    }
}
