//! The fleet model: clusters, node groups, pods, istiod, the injection webhook, the
//! certificate path and the kubelet, as event handlers on the [`engine`](crate::engine)
//! kernel. It knows nothing of files: it takes a validated [`Scenario`] and a seed and
//! returns metrics.
//!
//! Each file is one concern:
//! - [`event`]: the one event enum and what the kernel fingerprints of an event;
//! - [`fleet`]: the state — [`Fleet`] and its [`Cluster`]s, each owning its components,
//!   with private fields reached through methods — with its construction
//!   ([`fleet::build`]), sampling and summary ([`fleet::observe`]) and test-only
//!   invariants;
//! - the components and their handlers: [`state`] (a cluster's Kubernetes objects),
//!   [`pods`] (ReplicaSet slow start and requeue back-off, the injection webhook,
//!   scheduling, container start, readiness, CrashLoopBackOff), [`istiod`] (ready
//!   replicas, client limiters, the injection queue), [`certs`] (istio-agent retries,
//!   istiod's wait, CSR objects, the signer's deadline, Failed CSRs that slow the CA,
//!   csrcleaner), [`nodes`] (the EKS managed node group rolling update: DEFAULT,
//!   MINIMAL, Karpenter budget; cordon, drain with PDBs, the 15 min limit and `force`),
//!   [`rollout`] (waves with health gates and soak, each seen done at the pipeline's
//!   poll, interventions) and [`pacing`] (eviction pacers, AIMD), [`startup`] (istiod's
//!   informer LISTs through the apiserver until `/ready`, the readiness probe). The
//!   certificate authority is [`crate::ca`]'s component.
//! - [`streams`]: the roles that draw random numbers; each component owns the streams of
//!   its roles (one per role and entity, see [`crate::engine::rng`]).

pub mod certificates;
pub mod certs;
pub mod event;
pub mod explain;
pub mod fleet;
pub mod istiod;
pub mod journal;
pub mod nodes;
pub mod objects;
pub mod pacing;
pub mod pods;
pub mod probes;
pub mod ra;
pub mod rollout;
pub mod schedulable;
pub mod startup;
pub mod state;
pub mod streams;

use std::time::Instant;

use crate::engine::{Context, Limits, Model, Order, SimTime, Simulation};
use crate::metrics::{Recorder, Summary};
use crate::scenario::Scenario;

pub use event::Event;
pub use fleet::{Cluster, Fleet};

impl Model for Fleet<'_> {
    type Event = Event;

    fn handle(&mut self, event: Event, ctx: &mut Context<Event>) {
        let now = ctx.now();
        match event {
            Event::Ca(e) => self.handle_ca(e, ctx),
            Event::Sample => {
                self.take_sample(now);
                journal::sample_counters(self, ctx);
                self.settle_samples();
                rollout::on_sample(self, ctx);
                let sc = self.scenario();
                let next = now + sc.sample_interval;
                if next <= sc.horizon {
                    ctx.schedule_at(next, Event::Sample);
                }
            }
            Event::AimdTick => rollout::on_aimd_tick(self, ctx),
            Event::CsrCleaner => certs::on_csr_cleaner(self, ctx),
            Event::WaveStart { wave } => rollout::start_wave(self, ctx, wave),
            Event::RolloutPoll { wave } => rollout::poll_wave(self, ctx, wave),
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
                pods::on_replica_sync(self, ctx, cluster, workload)
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
            Event::IstiodList {
                cluster,
                pod,
                informer,
            } => startup::on_list_due(self, ctx, cluster, pod, informer),
            Event::PodTerminated { cluster, pod } => {
                pods::on_pod_terminated(self, ctx, cluster, pod)
            }
            Event::CsrAttempt { cluster, pod } => certs::on_csr_attempt(self, ctx, cluster, pod),
            Event::Api(e) => ra::on_api_event(self, ctx, e),
            Event::Signer(e) => ra::on_signer_event(self, ctx, e),
            Event::ApiSend {
                cluster,
                tag,
                retry,
            } => ra::on_api_send(self, ctx, cluster, tag, retry),
            Event::ApiDone { cluster, tag } => ra::on_api_done(self, ctx, cluster, tag),
            Event::FlowWake {
                cluster,
                flow,
                step,
            } => ra::on_flow_wake(self, ctx, cluster, flow, step),
            Event::Informer { cluster, key } => ra::on_informer(self, ctx, cluster, key),
            Event::IssuerDone {
                cluster,
                job,
                reply,
            } => ra::on_issuer_done(self, ctx, cluster, job, reply),
            Event::PcaPoll { cluster, job, cert } => self.on_pca_poll(ctx, cluster, job, cert),
            Event::ProbeDeadline { cluster } => probes::on_deadline(self, ctx, cluster),
            Event::ContainerRestart { cluster, pod } => {
                pods::on_container_restart(self, ctx, cluster, pod)
            }
            Event::RotationDue { cluster, gen } => ra::on_rotation_due(self, ctx, cluster, gen),
            Event::Intervention { index } => rollout::fire_intervention(self, ctx, index),
            Event::RestartBatch { index } => rollout::restart_batch(self, ctx, index),
            Event::Certs(e) => certificates::on_event(self, ctx, e),
        }
    }

    #[inline]
    fn prefetch_partition(&self, partition: u32, ahead: u32) {
        Fleet::prefetch_partition(self, partition, ahead);
    }

    /// The pod slot a pod event's handler reads first (and a rotation's state, an API
    /// reply's pending call): at 20 M pods these are cache misses, one per event.
    #[inline(always)]
    fn prefetch(&self, next: &Event) {
        if let Some((cluster, pod)) = next.pod() {
            self.cluster(cluster).objects().prefetch_pod(pod.slot);
        } else if let Event::RotationDue { cluster, .. } = *next {
            self.cluster(cluster).prefetch_next_rotation();
        } else if let Event::ApiDone { cluster, tag } | Event::ApiSend { cluster, tag, .. } = *next
        {
            self.cluster(cluster).cert().prefetch_call(tag)
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
    /// Milestones, and the records `--events` and `--trace` asked for.
    pub journal: journal::Journal,
    /// Traced pod phase spans per cluster (`--trace`; else empty).
    pub spans: Vec<Vec<journal::RawSpan>>,
}

/// Runs a scenario with a seed: a pure function of its inputs (but for `wall_s`).
/// Every sample is held in [`RunOutput::recorder`].
pub fn run(sc: &Scenario, seed: u64, scenario_hash: &str) -> RunOutput {
    run_with(
        sc,
        seed,
        scenario_hash,
        Recorder::default(),
        journal::Recording::default(),
        Order::default(),
    )
}

/// [`run`], keeping only the fleet rows of the time series (a sweep's or a check's run:
/// the figures are the same, memory does not grow with clusters x samples).
pub fn run_summary(sc: &Scenario, seed: u64, scenario_hash: &str) -> RunOutput {
    run_with(
        sc,
        seed,
        scenario_hash,
        Recorder::fleet_only(),
        journal::Recording::default(),
        Order::default(),
    )
}

/// [`run`], writing `timeseries.csv` to `out` as samples are taken (the same bytes as
/// [`Recorder::to_csv`] of a buffered run) and keeping the records of `--events` and
/// `--trace` that `rec` asks for (they change nothing in the run: same events, same
/// trace hash); the recorder returned holds the fleet rows. The error is the first write
/// error. `order` is the order events run in (the same results under both; `--events`
/// and `--trace` run in the global order).
pub fn run_streaming(
    sc: &Scenario,
    seed: u64,
    scenario_hash: &str,
    out: Box<dyn std::io::Write + Send>,
    rec: journal::Recording,
    order: Order,
) -> std::io::Result<RunOutput> {
    let names = sc.clusters.iter().map(|c| c.name.clone()).collect();
    let recorder = Recorder::streaming(out, names);
    let mut r = run_with(sc, seed, scenario_hash, recorder, rec, order);
    r.recorder.finish()?;
    Ok(r)
}

fn run_with(
    sc: &Scenario,
    seed: u64,
    scenario_hash: &str,
    recorder: Recorder,
    rec: journal::Recording,
    order: Order,
) -> RunOutput {
    let started = Instant::now();
    let mut fleet = Fleet::new(sc, seed);
    fleet.set_recorder(recorder);
    fleet.set_recording(rec);
    // The records of `--events` and `--trace` are kept in the order events run, so they
    // run in the global order; so does a fleet whose clusters are all in one partition
    // (one cluster, or all sharing fleet-level CAs): windows would only add bookkeeping.
    let order = if rec.events || rec.trace || fleet::clusters_in_one_partition(sc) {
        Order::Global
    } else {
        order
    };
    let mut sim = Simulation::partitioned(fleet, fleet::partitions(sc), order);
    sim.init(|fleet, ctx| fleet.start(ctx));
    let report = sim.run(Limits {
        // Inclusive of the last sample at the horizon.
        horizon: sc.horizon.saturating_add(SimTime(1)),
        max_events: sc.max_events,
    });
    let wall_s = started.elapsed().as_secs_f64();
    let summary = sim.model.summarize(&report, seed, scenario_hash, wall_s);
    let cluster_names = sc.clusters.iter().map(|c| c.name.clone()).collect();
    let end = SimTime::from_secs_f64(summary.sim_end_s).min(sc.horizon);
    let spans = sim
        .model
        .clusters_mut()
        .iter_mut()
        .map(|c| c.objects_mut().take_phase_spans(end))
        .collect();
    RunOutput {
        summary,
        recorder: sim.model.take_recorder(),
        cluster_names,
        journal: sim.model.take_journal(),
        spans,
    }
}

#[cfg(test)]
mod tests;
