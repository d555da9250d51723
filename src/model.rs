//! The fleet model: clusters, node groups, pods, istiod, the injection webhook, the
//! certificate path and the kubelet, as event handlers on the [`engine`](crate::engine)
//! kernel. It knows nothing of files: it takes a validated [`Scenario`] and a seed and
//! returns metrics.
//!
//! The mechanics, each in its own module:
//! - [`pods`]: ReplicaSet slow start and requeue back-off, the injection webhook,
//!   scheduling, container start, readiness, CrashLoopBackOff;
//! - [`certs`]: istio-agent retries, istiod's rate-limited Kubernetes client and its wait,
//!   CSR objects, the signer's deadline, Failed CSRs that slow the CA, csrcleaner;
//! - [`nodes`]: the EKS managed node group rolling update (DEFAULT, MINIMAL, Karpenter
//!   budget), cordon, drain with PDBs, the 15 min limit and `force`;
//! - [`rollout`]: waves with health gates and soak, pacing strategies, interventions.

pub mod certs;
pub mod nodes;
pub mod pacing;
pub mod pods;
pub mod rollout;
pub mod state;

use std::collections::VecDeque;
use std::time::Instant;

use crate::ca::{CaEvent, CaOutcome, CertificateAuthority};
use crate::engine::{
    rng, Context, Limits, Model, RngStream, SimTime, Simulation, TraceEvent, TraceHash,
};
use crate::metrics::{ClusterFigures, Figures, Recorder, Sample, Summary};
use crate::scenario::{ClusterSpec, Scenario};

use certs::{CsrRef, CsrTable};
use nodes::GroupUpgrade;
use pacing::{AimdWindow, Pacer, TokenBucket};
use state::{ClusterState, PodRef};

/// Every event of the fleet model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A certificate authority's own event.
    Ca(CaEvent),
    /// Take a metrics sample; evaluate conditions and gates.
    Sample,
    /// Adjust AIMD pacers.
    AimdTick,
    /// csrcleaner's periodic scan.
    CsrCleaner,
    /// Start wave `wave` of the rollout.
    WaveStart {
        /// Wave index.
        wave: u32,
    },
    /// A launched node became Ready.
    NodeReady {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
    },
    /// Try to evict more pods from a draining node.
    DrainTick {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
        /// Tick generation (stale ticks are dropped).
        gen: u32,
    },
    /// The per-node drain limit (EKS: 15 min).
    DrainDeadline {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
    },
    /// The ASG terminates a drained node.
    NodeTerminate {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
    },
    /// ReplicaSet requeue: create missing pods.
    ReplicaSync {
        /// Cluster.
        cluster: u32,
        /// Workload.
        workload: u32,
    },
    /// The injection webhook answered for a pod being created.
    WebhookDone {
        /// Cluster.
        cluster: u32,
        /// Workload (for the slow-start batch even if the pod is gone).
        workload: u32,
        /// The pod.
        pod: PodRef,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A pod's containers started.
    ContainersStarted {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// A warming pod became ready.
    PodReady {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// A deleted pod finished terminating and frees its node slot.
    PodTerminated {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// istio-agent sends a certificate request.
    CsrAttempt {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// istiod got its rate-limiter tokens: create the CSR object.
    CsrCreate {
        /// The CSR.
        csr: CsrRef,
    },
    /// istiod stops waiting for the signed certificate.
    IstiodGiveUp {
        /// The CSR.
        csr: CsrRef,
    },
    /// The signer's own deadline for the CA call.
    SignerDeadline {
        /// The CSR.
        csr: CsrRef,
    },
    /// The startup probe's limit: no certificate => the kubelet kills the proxy.
    StartupProbeKill {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// CrashLoopBackOff is over: the kubelet restarts the container.
    ContainerRestart {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// An intervention fires.
    Intervention {
        /// Index into the scenario's interventions.
        index: u32,
    },
    /// The next batch of a paced restart.
    RestartBatch {
        /// Index into the scenario's interventions.
        index: u32,
    },
}

impl From<CaEvent> for Event {
    fn from(e: CaEvent) -> Self {
        Event::Ca(e)
    }
}

fn pod_entity(cluster: u32, pod: PodRef) -> u64 {
    ((cluster as u64) << 40) | ((pod.slot as u64) << 8) | (pod.gen as u64 & 0xff)
}

fn node_entity(cluster: u32, node: u32) -> u64 {
    ((cluster as u64) << 40) | node as u64
}

impl TraceEvent for Event {
    fn kind(&self) -> u32 {
        match self {
            Event::Ca(_) => 1,
            Event::Sample => 2,
            Event::AimdTick => 3,
            Event::CsrCleaner => 4,
            Event::WaveStart { .. } => 5,
            Event::NodeReady { .. } => 6,
            Event::DrainTick { .. } => 7,
            Event::DrainDeadline { .. } => 8,
            Event::NodeTerminate { .. } => 9,
            Event::ReplicaSync { .. } => 10,
            Event::WebhookDone { .. } => 11,
            Event::ContainersStarted { .. } => 12,
            Event::PodReady { .. } => 13,
            Event::PodTerminated { .. } => 14,
            Event::CsrAttempt { .. } => 15,
            Event::CsrCreate { .. } => 16,
            Event::IstiodGiveUp { .. } => 17,
            Event::SignerDeadline { .. } => 18,
            Event::StartupProbeKill { .. } => 19,
            Event::ContainerRestart { .. } => 20,
            Event::Intervention { .. } => 21,
            Event::RestartBatch { .. } => 22,
        }
    }

    fn entity(&self) -> u64 {
        match *self {
            Event::Ca(e) => e.ca as u64,
            Event::Sample | Event::AimdTick | Event::CsrCleaner => 0,
            Event::WaveStart { wave } => wave as u64,
            Event::NodeReady { cluster, node }
            | Event::DrainTick { cluster, node, .. }
            | Event::DrainDeadline { cluster, node }
            | Event::NodeTerminate { cluster, node } => node_entity(cluster, node),
            Event::ReplicaSync { cluster, workload } => node_entity(cluster, workload),
            Event::WebhookDone { cluster, pod, .. }
            | Event::ContainersStarted { cluster, pod }
            | Event::PodReady { cluster, pod }
            | Event::PodTerminated { cluster, pod }
            | Event::CsrAttempt { cluster, pod }
            | Event::StartupProbeKill { cluster, pod }
            | Event::ContainerRestart { cluster, pod } => pod_entity(cluster, pod),
            Event::CsrCreate { csr }
            | Event::IstiodGiveUp { csr }
            | Event::SignerDeadline { csr } => csr.id(),
            Event::Intervention { index } | Event::RestartBatch { index } => index as u64,
        }
    }
}

/// A ready istiod replica and its Kubernetes client limiter.
#[derive(Debug, Clone)]
pub struct IstiodReplica {
    /// Its pod slot.
    pub slot: u32,
    /// client-go's token bucket (QPS, burst).
    pub limiter: TokenBucket,
}

/// Counters of one cluster that are not pod phases.
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
    /// Peak Failed CSR objects.
    pub csr_failed_peak: u64,
    /// Certificates delivered.
    pub certs_issued: u64,
}

/// Counters over the final window (last 10 % of the horizon) for `metastable`.
#[derive(Debug, Clone, Default)]
pub struct EndWindow {
    /// Certificate requests answered (delivered, or failed) in the window.
    pub attempts: u64,
    /// Of which delivered.
    pub delivered: u64,
    /// Evictions and node launches in the window (a trigger still acting).
    pub triggers: u64,
}

/// One cluster: spec, state and the upgrade in progress.
pub struct Cluster {
    /// Index in the scenario.
    pub index: u32,
    /// Pods and nodes.
    pub state: ClusterState,
    /// Ready istiod replicas.
    pub istiod: Vec<IstiodReplica>,
    /// The webhook's injection queue: when istiod can take the next injection.
    pub inject_free_at: SimTime,
    /// Node launches and agent jitter.
    pub rng: RngStream,
    /// Eviction pacer.
    pub pacer: Pacer,
    /// AIMD observation window.
    pub aimd: AimdWindow,
    /// Upgrade progress: node groups still to do, current one first.
    pub upgrade: Option<GroupUpgrade>,
    /// Node groups still to upgrade after the current one.
    pub groups_left: VecDeque<u32>,
    /// When the upgrade finished.
    pub upgrade_done_at: Option<SimTime>,
    /// The upgrade failed (PodEvictionFailure) or was halted.
    pub upgrade_failed: bool,
    /// istiod replicas to restore after the upgrade window.
    pub istiod_restore: Option<u32>,
    /// Failed CSR objects, by the time they failed (csrcleaner deletes by age).
    pub failed_csrs: VecDeque<SimTime>,
    /// CSR objects pending (created, not answered).
    pub csr_in_flight: u32,
    /// Counters.
    pub counters: Counters,
    /// End-window counters.
    pub window: EndWindow,
    /// Healthy now.
    pub healthy: bool,
    /// When it last became healthy.
    pub healthy_since: SimTime,
    /// Lowest sampled ready fraction.
    pub min_ready_fraction: f64,
}

impl Cluster {
    /// Failed CSR objects present.
    pub fn failed_objects(&self) -> u64 {
        self.failed_csrs.len() as u64
    }
}

/// Per-CA bookkeeping beside the component.
#[derive(Debug, Clone, Default)]
pub struct CaStats {
    /// Peak of requests at the CA.
    pub peak: u64,
    /// Sum over samples of utilisation (for the mean).
    pub utilization_sum: f64,
    /// Samples taken.
    pub samples: u64,
    /// Busy worker-seconds at the previous sample.
    pub busy_at_last_sample: f64,
}

/// The whole fleet.
pub struct Fleet<'s> {
    /// The scenario.
    pub sc: &'s Scenario,
    /// Clusters.
    pub clusters: Vec<Cluster>,
    /// Certificate authorities.
    pub cas: Vec<CertificateAuthority>,
    /// Per-CA bookkeeping.
    pub ca_stats: Vec<CaStats>,
    /// CSRs in flight.
    pub csrs: CsrTable,
    /// Waves and interventions.
    pub rollout: rollout::RolloutState,
    /// Metrics.
    pub recorder: Recorder,
    /// Start of the end window.
    pub window_start: SimTime,
    outcomes: Vec<CaOutcome>,
}

impl<'s> Fleet<'s> {
    /// Builds the fleet in its steady state at time zero: every node Ready on the old AMI,
    /// every pod Ready with a certificate.
    pub fn new(sc: &'s Scenario, seed: u64) -> Self {
        let cas = sc
            .cas
            .iter()
            .enumerate()
            .map(|(i, ca)| {
                CertificateAuthority::new(
                    i as u32,
                    ca.config,
                    rng::named_stream(seed, &format!("ca/{}/service", ca.name)),
                )
            })
            .collect();
        let clusters = sc
            .clusters
            .iter()
            .enumerate()
            .map(|(i, spec)| Self::build_cluster(sc, i as u32, spec, seed))
            .collect();
        Fleet {
            sc,
            clusters,
            cas,
            ca_stats: vec![CaStats::default(); sc.cas.len()],
            csrs: CsrTable::default(),
            rollout: rollout::RolloutState::new(sc),
            recorder: Recorder::default(),
            window_start: SimTime(sc.horizon.as_nanos() / 10 * 9),
            outcomes: Vec::new(),
        }
    }

    fn build_cluster(sc: &Scenario, index: u32, spec: &ClusterSpec, seed: u64) -> Cluster {
        let mut state = ClusterState::new(spec.node_groups.len());
        // Workload 0 is istiod.
        state
            .workloads
            .push(pods::istiod_workload(spec, spec.istiod.replicas));
        for w in &spec.workloads {
            state.workloads.push(pods::workload_from_spec(w));
        }
        for (g, group) in spec.node_groups.iter().enumerate() {
            for _ in 0..group.nodes {
                let n = nodes::add_node(&mut state, g as u32, group.max_pods, false);
                state.nodes[n as usize].state = state::NodeState::Ready;
                state.mark_schedulable(n);
            }
        }
        let mut istiod = Vec::new();
        for w in 0..state.workloads.len() as u32 {
            let desired = state.workloads[w as usize].desired;
            let injected = state.workloads[w as usize].injected;
            for _ in 0..desired {
                let pod = state.new_pod(SimTime::ZERO, w, injected);
                let group = state.workloads[w as usize].node_group;
                let node = state.best_node(group).expect("validated: pods fit");
                state.bind(pod.slot, node);
                state.set_phase(SimTime::ZERO, pod.slot, state::PodPhase::Ready);
                if w == 0 {
                    istiod.push(IstiodReplica {
                        slot: pod.slot,
                        limiter: TokenBucket::new(
                            spec.istiod.client_qps,
                            spec.istiod.client_burst as f64,
                            SimTime::ZERO,
                        ),
                    });
                }
            }
        }
        Cluster {
            index,
            state,
            istiod,
            inject_free_at: SimTime::ZERO,
            rng: rng::named_stream(seed, &format!("cluster/{}", spec.name)),
            pacer: Pacer::new(&sc.rollout.pacing, SimTime::ZERO),
            aimd: AimdWindow::default(),
            upgrade: None,
            groups_left: VecDeque::new(),
            upgrade_done_at: None,
            upgrade_failed: false,
            istiod_restore: None,
            failed_csrs: VecDeque::new(),
            csr_in_flight: 0,
            counters: Counters::default(),
            window: EndWindow::default(),
            healthy: true,
            healthy_since: SimTime::ZERO,
            min_ready_fraction: 1.0,
        }
    }

    /// The cluster's spec.
    #[inline]
    pub fn spec(&self, cluster: u32) -> &'s ClusterSpec {
        &self.sc.clusters[cluster as usize]
    }

    /// Re-evaluates a cluster's health after a change.
    pub fn check_health(&mut self, now: SimTime, cluster: u32) {
        let c = &mut self.clusters[cluster as usize];
        let healthy = c.state.counts.ready >= c.state.desired_pods()
            && c.state.counts.crashloop == 0
            && c.state.counts.backoff == 0;
        if healthy != c.healthy {
            c.healthy = healthy;
            if healthy {
                c.healthy_since = now;
            }
        }
    }

    /// Schedules the initial events.
    fn start(&self, ctx: &mut Context<Event>) {
        ctx.schedule_at(SimTime::ZERO, Event::Sample);
        let period = self
            .sc
            .clusters
            .iter()
            .map(|c| c.kubernetes.csr_cleaner_period)
            .min()
            .unwrap_or(SimTime::from_secs(3600));
        ctx.schedule_at(period, Event::CsrCleaner);
        if let crate::scenario::Pacing::Aimd { interval, .. } = self.sc.rollout.pacing {
            ctx.schedule_at(interval, Event::AimdTick);
        }
        rollout::schedule_start(self, ctx);
    }

    fn take_sample(&mut self, now: SimTime) {
        let mut fleet = Sample {
            time_s: now.as_secs_f64(),
            cluster: None,
            ..Sample::default()
        };
        let dt = self.sc.sample_interval.as_secs_f64();
        let mut ca_util = vec![0.0; self.cas.len()];
        for (i, ca) in self.cas.iter().enumerate() {
            let st = &mut self.ca_stats[i];
            let busy = ca.busy_worker_seconds(now);
            let util = if now == SimTime::ZERO {
                0.0
            } else {
                ((busy - st.busy_at_last_sample) / (dt * ca.workers() as f64)).clamp(0.0, 1.0)
            };
            st.busy_at_last_sample = busy;
            if now > SimTime::ZERO {
                st.utilization_sum += util;
                st.samples += 1;
            }
            ca_util[i] = util;
            fleet.ca_queue += (ca.queue_len() + ca.in_service() as u64) as u32;
        }
        fleet.ca_utilization = if ca_util.is_empty() {
            0.0
        } else {
            ca_util.iter().sum::<f64>() / ca_util.len() as f64
        };
        for (i, c) in self.clusters.iter_mut().enumerate() {
            let ca = self.sc.clusters[i].ca;
            let (nodes_old, nodes_new) = c.state.node_counts();
            let desired = c.state.desired_pods();
            let s = Sample {
                time_s: now.as_secs_f64(),
                cluster: Some(i as u32),
                pods_ready: c.state.counts.ready,
                pods_pending: c.state.counts.pending,
                pods_backoff: c.state.counts.backoff,
                pods_desired: desired,
                nodes_old,
                nodes_new,
                istiod_ready: c.istiod.len() as u32,
                ca_queue: (self.cas[ca].queue_len() + self.cas[ca].in_service() as u64) as u32,
                ca_utilization: ca_util[ca],
                csr_in_flight: c.csr_in_flight,
                csr_failed_objects: c.failed_objects(),
                pods_crashloop: c.state.counts.crashloop,
            };
            if desired > 0 {
                c.min_ready_fraction = c
                    .min_ready_fraction
                    .min(s.pods_ready as f64 / desired as f64);
            }
            fleet.pods_ready += s.pods_ready;
            fleet.pods_pending += s.pods_pending;
            fleet.pods_backoff += s.pods_backoff;
            fleet.pods_desired += s.pods_desired;
            fleet.nodes_old += s.nodes_old;
            fleet.nodes_new += s.nodes_new;
            fleet.istiod_ready += s.istiod_ready;
            fleet.csr_in_flight += s.csr_in_flight;
            fleet.csr_failed_objects += s.csr_failed_objects;
            fleet.pods_crashloop += s.pods_crashloop;
            self.recorder.samples.push(s);
        }
        self.recorder.samples.push(fleet);
    }

    /// Updates a CA's slowdown after the Failed CSR objects of its clusters changed.
    pub fn sync_failed_objects(&mut self, ctx: &mut Context<Event>, ca: usize) {
        let total: u64 = self
            .clusters
            .iter()
            .filter(|c| self.sc.clusters[c.index as usize].ca == ca)
            .map(|c| c.failed_objects())
            .sum();
        self.cas[ca].set_failed_objects(total, ctx);
    }

    fn handle_ca(&mut self, e: CaEvent, ctx: &mut Context<Event>) {
        let ca = e.ca as usize;
        let mut out = std::mem::take(&mut self.outcomes);
        self.cas[ca].handle(e.kind, ctx, &mut out);
        for o in out.drain(..) {
            certs::on_ca_outcome(self, ctx, o);
        }
        self.outcomes = out;
    }

    /// Builds the summary at the end of a run.
    fn summarize(
        &self,
        report: &crate::engine::RunReport,
        seed: u64,
        hash: &str,
        wall_s: f64,
    ) -> Summary {
        let end = report.end;
        let in_window = |c: &Cluster| {
            c.window.triggers == 0
                && c.window.attempts > 0
                && (c.window.delivered as f64) < 0.5 * c.window.attempts as f64
        };
        let mut clusters = Vec::with_capacity(self.clusters.len());
        for c in &self.clusters {
            let spec = self.spec(c.index);
            let ca = spec.ca;
            let recovered = c.healthy;
            let f = Figures {
                upgrade_complete_s: c.upgrade_done_at.map(|t| t.as_secs_f64()),
                upgrade_failed: c.upgrade_failed,
                recovered,
                time_to_recover_s: recovered.then(|| c.healthy_since.as_secs_f64()),
                peak_crashloop_pods: c.state.counts.crashloop_peak,
                crashloop_pod_seconds: round3(c.state.crashloop_pod_seconds_at(end)),
                pods_total: c.state.desired_pods(),
                pod_restarts: c.counters.pod_restarts,
                evictions: c.counters.evictions,
                csr_requests: c.counters.csr_requests,
                csr_timeouts: c.counters.csr_timeouts,
                csr_rate_limited: c.counters.csr_rate_limited,
                csr_failed_objects_peak: c.counters.csr_failed_peak,
                csr_wasted_signings: c.counters.csr_wasted_signings,
                ca_peak_queue: self.ca_stats[ca].peak,
                ca_utilization: round3(self.ca_mean_utilization(ca)),
                min_ready_fraction: round3(c.min_ready_fraction),
                metastable: !recovered && in_window(c),
            };
            clusters.push(ClusterFigures {
                name: spec.name.clone(),
                ca: self.sc.cas[ca].name.clone(),
                figures: f,
            });
        }
        let all_done = self
            .clusters
            .iter()
            .all(|c| c.upgrade_done_at.is_some() && !c.upgrade_failed);
        let recovered = clusters.iter().all(|c| c.figures.recovered);
        let sum = |f: fn(&Figures) -> u64| clusters.iter().map(|c| f(&c.figures)).sum::<u64>();
        let fleet = Figures {
            upgrade_complete_s: if all_done {
                self.clusters
                    .iter()
                    .filter_map(|c| c.upgrade_done_at)
                    .max()
                    .map(|t| t.as_secs_f64())
            } else {
                None
            },
            upgrade_failed: self.clusters.iter().any(|c| c.upgrade_failed) || self.rollout.halted,
            recovered,
            time_to_recover_s: if recovered {
                Some(
                    self.clusters
                        .iter()
                        .map(|c| c.healthy_since)
                        .max()
                        .unwrap_or(SimTime::ZERO)
                        .as_secs_f64(),
                )
            } else {
                None
            },
            peak_crashloop_pods: self.fleet_peak_crashloop(),
            crashloop_pod_seconds: round3(
                clusters
                    .iter()
                    .map(|c| c.figures.crashloop_pod_seconds)
                    .sum(),
            ),
            pods_total: clusters.iter().map(|c| c.figures.pods_total).sum(),
            pod_restarts: sum(|f| f.pod_restarts),
            evictions: sum(|f| f.evictions),
            csr_requests: sum(|f| f.csr_requests),
            csr_timeouts: sum(|f| f.csr_timeouts),
            csr_rate_limited: sum(|f| f.csr_rate_limited),
            csr_failed_objects_peak: self.fleet_failed_peak(),
            csr_wasted_signings: sum(|f| f.csr_wasted_signings),
            ca_peak_queue: self.ca_stats.iter().map(|s| s.peak).max().unwrap_or(0),
            ca_utilization: round3(if self.cas.is_empty() {
                0.0
            } else {
                (0..self.cas.len())
                    .map(|i| self.ca_mean_utilization(i))
                    .fold(0.0, f64::max)
            }),
            min_ready_fraction: round3(self.fleet_min_ready()),
            metastable: clusters.iter().any(|c| c.figures.metastable),
        };
        Summary {
            scenario: self.sc.name.clone(),
            scenario_hash: hash.to_string(),
            seed,
            events: report.events,
            wall_s: round3(wall_s),
            sim_end_s: end.as_secs_f64(),
            stop_reason: report.stop.as_str().to_string(),
            trace_hash: TraceHash::hex(report.trace_hash),
            fleet,
            clusters,
        }
    }

    fn ca_mean_utilization(&self, ca: usize) -> f64 {
        let s = &self.ca_stats[ca];
        if s.samples == 0 {
            0.0
        } else {
            s.utilization_sum / s.samples as f64
        }
    }

    fn fleet_rows(&self) -> impl Iterator<Item = &Sample> {
        self.recorder.samples.iter().filter(|s| s.cluster.is_none())
    }

    fn fleet_peak_crashloop(&self) -> u32 {
        self.fleet_rows()
            .map(|s| s.pods_crashloop)
            .max()
            .unwrap_or(0)
            .max(
                // A peak between samples in one cluster.
                self.clusters
                    .iter()
                    .map(|c| c.state.counts.crashloop_peak)
                    .max()
                    .unwrap_or(0),
            )
    }

    fn fleet_failed_peak(&self) -> u64 {
        self.fleet_rows()
            .map(|s| s.csr_failed_objects)
            .max()
            .unwrap_or(0)
            .max(
                self.clusters
                    .iter()
                    .map(|c| c.counters.csr_failed_peak)
                    .max()
                    .unwrap_or(0),
            )
    }

    fn fleet_min_ready(&self) -> f64 {
        self.fleet_rows()
            .filter(|s| s.pods_desired > 0)
            .map(|s| s.pods_ready as f64 / s.pods_desired as f64)
            .fold(1.0, f64::min)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Model for Fleet<'_> {
    type Event = Event;

    fn handle(&mut self, event: Event, ctx: &mut Context<Event>) {
        let now = ctx.now();
        match event {
            Event::Ca(e) => self.handle_ca(e, ctx),
            Event::Sample => {
                self.take_sample(now);
                rollout::on_sample(self, ctx);
                let next = now + self.sc.sample_interval;
                if next <= self.sc.horizon {
                    ctx.schedule_at(next, Event::Sample);
                }
            }
            Event::AimdTick => rollout::on_aimd_tick(self, ctx),
            Event::CsrCleaner => certs::on_csr_cleaner(self, ctx),
            Event::WaveStart { wave } => rollout::start_wave(self, ctx, wave),
            Event::NodeReady { cluster, node } => nodes::on_node_ready(self, ctx, cluster, node),
            Event::DrainTick { cluster, node, gen } => {
                nodes::on_drain_tick(self, ctx, cluster, node, gen)
            }
            Event::DrainDeadline { cluster, node } => {
                nodes::on_drain_deadline(self, ctx, cluster, node)
            }
            Event::NodeTerminate { cluster, node } => {
                nodes::on_node_terminate(self, ctx, cluster, node)
            }
            Event::ReplicaSync { cluster, workload } => {
                self.clusters[cluster as usize].state.workloads[workload as usize].sync_scheduled =
                    false;
                pods::sync_workload(self, ctx, cluster, workload)
            }
            Event::WebhookDone {
                cluster,
                workload,
                pod,
                ok,
            } => pods::on_webhook_done(self, ctx, cluster, workload, pod, ok),
            Event::ContainersStarted { cluster, pod } => {
                pods::on_containers_started(self, ctx, cluster, pod)
            }
            Event::PodReady { cluster, pod } => pods::on_pod_ready(self, ctx, cluster, pod),
            Event::PodTerminated { cluster, pod } => {
                pods::on_pod_terminated(self, ctx, cluster, pod)
            }
            Event::CsrAttempt { cluster, pod } => certs::on_csr_attempt(self, ctx, cluster, pod),
            Event::CsrCreate { csr } => certs::on_csr_create(self, ctx, csr),
            Event::IstiodGiveUp { csr } => certs::on_istiod_give_up(self, ctx, csr),
            Event::SignerDeadline { csr } => certs::on_signer_deadline(self, ctx, csr),
            Event::StartupProbeKill { cluster, pod } => {
                pods::on_startup_probe_kill(self, ctx, cluster, pod)
            }
            Event::ContainerRestart { cluster, pod } => {
                pods::on_container_restart(self, ctx, cluster, pod)
            }
            Event::Intervention { index } => rollout::fire_intervention(self, ctx, index),
            Event::RestartBatch { index } => rollout::restart_batch(self, ctx, index),
        }
    }
}

/// The result of one run.
pub struct RunOutput {
    /// The summary.
    pub summary: Summary,
    /// The sampled time series.
    pub recorder: Recorder,
    /// Cluster names in order (for the CSV).
    pub cluster_names: Vec<String>,
}

/// Runs a scenario with a seed: a pure function of its inputs (but for `wall_s`).
pub fn run(sc: &Scenario, seed: u64, scenario_hash: &str) -> RunOutput {
    let started = Instant::now();
    let fleet = Fleet::new(sc, seed);
    let mut sim = Simulation::new(fleet);
    sim.init(|fleet, ctx| fleet.start(ctx));
    let report = sim.run(Limits {
        // Inclusive of the last sample at the horizon.
        horizon: sc.horizon.saturating_add(SimTime(1)),
        max_events: sc.max_events,
    });
    let wall_s = started.elapsed().as_secs_f64();
    let summary = sim.model.summarize(&report, seed, scenario_hash, wall_s);
    let cluster_names = sc.clusters.iter().map(|c| c.name.clone()).collect();
    RunOutput {
        summary,
        recorder: std::mem::take(&mut sim.model.recorder),
        cluster_names,
    }
}

#[cfg(test)]
mod tests;

impl Fleet<'_> {
    /// Checks the model's invariants by recounting from scratch; tests call it after
    /// every event. Returns the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        use state::{NodeState, PodPhase, NONE};
        for c in &self.clusters {
            let name = &self.spec(c.index).name;
            let s = &c.state;
            let mut active = vec![0u32; s.workloads.len()];
            let mut ready = vec![0u32; s.workloads.len()];
            let (mut pending, mut backoff, mut crashloop) = (0u32, 0u32, 0u32);
            for (slot, p) in s.pods.iter().enumerate() {
                if p.phase == PodPhase::Free {
                    continue;
                }
                if p.phase != PodPhase::Terminating {
                    active[p.workload as usize] += 1;
                }
                if p.phase == PodPhase::Ready {
                    ready[p.workload as usize] += 1;
                }
                pending += matches!(
                    p.phase,
                    PodPhase::Creating | PodPhase::Pending | PodPhase::Starting
                ) as u32;
                backoff += (p.phase == PodPhase::Backoff) as u32;
                crashloop += p.crashlooping() as u32;
                let on_node = !matches!(p.phase, PodPhase::Creating | PodPhase::Pending);
                if on_node != (p.node != NONE) {
                    return Err(format!(
                        "{name}: pod {slot} in {:?} has node {}",
                        p.phase, p.node
                    ));
                }
                if p.node != NONE {
                    let n = &s.nodes[p.node as usize];
                    if n.state == NodeState::Terminated {
                        return Err(format!("{name}: pod {slot} on terminated node {}", p.node));
                    }
                    if n.pods.get(p.node_pos as usize) != Some(&(slot as u32)) {
                        return Err(format!("{name}: pod {slot} not in its node's list"));
                    }
                }
            }
            for (w, wl) in s.workloads.iter().enumerate() {
                if wl.active != active[w] || wl.ready != ready[w] {
                    return Err(format!(
                        "{name}: workload {w}: counted active {} ready {}, actual {} {}",
                        wl.active, wl.ready, active[w], ready[w]
                    ));
                }
                if wl.active > wl.desired && w != 0 {
                    return Err(format!(
                        "{name}: workload {w} has {} pods for {} desired",
                        wl.active, wl.desired
                    ));
                }
            }
            let k = &s.counts;
            if (k.ready, k.pending, k.backoff, k.crashloop)
                != (ready.iter().sum(), pending, backoff, crashloop)
            {
                return Err(format!("{name}: pod counters drifted"));
            }
            let mut draining_old = 0;
            for (i, n) in s.nodes.iter().enumerate() {
                if n.pods.len() as u32 > n.capacity {
                    return Err(format!("{name}: node {i} over capacity"));
                }
                if n.state == NodeState::Draining && !n.new_ami {
                    draining_old += 1;
                }
                let listed = s.is_listed_schedulable(i as u32);
                if listed != (n.state == NodeState::Ready) {
                    return Err(format!(
                        "{name}: node {i} ({:?}) schedulable={listed}",
                        n.state
                    ));
                }
            }
            if let Some(u) = &c.upgrade {
                if draining_old > u.max_unavailable {
                    return Err(format!(
                        "{name}: {draining_old} old nodes unavailable, maxUnavailable {}",
                        u.max_unavailable
                    ));
                }
            }
            if c.istiod.len() as u32 != s.workloads[0].ready {
                return Err(format!("{name}: istiod replicas list out of step"));
            }
        }
        Ok(())
    }
}
