//! Metrics: the time series a run samples and the summary it ends with.
//!
//! The model fills a [`Recorder`]; nothing here knows how the figures were produced.
//! Both outputs are plain data with stable column and key orders, so the same run
//! gives the same bytes.

pub mod predicate;

use serde::Serialize;

/// One sample of one cluster (or of the fleet, `cluster = None`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Sample time (s).
    pub time_s: f64,
    /// Cluster index, or `None` for the fleet totals.
    pub cluster: Option<u32>,
    /// Pods ready.
    pub pods_ready: u32,
    /// Pods being created, unscheduled or starting.
    pub pods_pending: u32,
    /// Pods waiting out CrashLoopBackOff.
    pub pods_backoff: u32,
    /// Desired pods.
    pub pods_desired: u32,
    /// Nodes on the old AMI.
    pub nodes_old: u32,
    /// Nodes on the new AMI.
    pub nodes_new: u32,
    /// istiod replicas ready.
    pub istiod_ready: u32,
    /// Requests at the cluster's CA (waiting and in service); the fleet row sums CAs.
    pub ca_queue: u32,
    /// The CA's utilisation over the last sample interval (fleet row: mean over CAs).
    pub ca_utilization: f64,
    /// CSR objects created and not yet answered.
    pub csr_in_flight: u32,
    /// Failed CSR objects present.
    pub csr_failed_objects: u64,
    /// Pods restarted at least once and not ready.
    pub pods_crashloop: u32,
}

/// The CSV header of `timeseries.csv`.
pub const TIMESERIES_HEADER: &str = "time_s,cluster,pods_ready,pods_pending,pods_backoff,pods_desired,nodes_old,nodes_new,istiod_ready,ca_queue,ca_utilization,csr_in_flight,csr_failed_objects,pods_crashloop";

/// Collects samples as the run goes.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Samples in time order; within a time, clusters in order then the fleet row.
    pub samples: Vec<Sample>,
}

impl Recorder {
    /// Renders `timeseries.csv`; `names` maps cluster indices to names.
    pub fn to_csv(&self, names: &[String]) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(64 * (self.samples.len() + 1));
        out.push_str(TIMESERIES_HEADER);
        out.push('\n');
        for s in &self.samples {
            let cluster = match s.cluster {
                Some(i) => names[i as usize].as_str(),
                None => "*",
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{:.4},{},{},{}",
                fmt_num(s.time_s),
                cluster,
                s.pods_ready,
                s.pods_pending,
                s.pods_backoff,
                s.pods_desired,
                s.nodes_old,
                s.nodes_new,
                s.istiod_ready,
                s.ca_queue,
                s.ca_utilization,
                s.csr_in_flight,
                s.csr_failed_objects,
                s.pods_crashloop,
            );
        }
        out
    }
}

/// Formats a number without a trailing `.0` for whole values.
pub fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}

/// Figures of one cluster or of the whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// When its node upgrade finished (s); `None` if it never did.
    pub upgrade_complete_s: Option<f64>,
    /// Whether its node upgrade failed (PodEvictionFailure) or was halted.
    pub upgrade_failed: bool,
    /// Every workload at its desired ready replicas and no pod in back-off at the end.
    pub recovered: bool,
    /// When it last became healthy, if it stayed so to the end (s).
    pub time_to_recover_s: Option<f64>,
    /// Peak of pods restarted at least once and not ready.
    pub peak_crashloop_pods: u32,
    /// Integral of crashlooping pods over time (pod-seconds).
    pub crashloop_pod_seconds: f64,
    /// Desired pods.
    pub pods_total: u32,
    /// Container restarts by the kubelet (startup probe kills).
    pub pod_restarts: u64,
    /// Pod evictions by drains.
    pub evictions: u64,
    /// CSR objects created.
    pub csr_requests: u64,
    /// Certificate requests istiod gave up on (its wait timed out).
    pub csr_timeouts: u64,
    /// Requests refused at once because istiod's client limiter would outlast the wait.
    pub csr_rate_limited: u64,
    /// Peak of Failed CSR objects present.
    pub csr_failed_objects_peak: u64,
    /// Signings completed for a requester that had given up.
    pub csr_wasted_signings: u64,
    /// Peak of requests at the CA (waiting and in service).
    pub ca_peak_queue: u64,
    /// The CA's mean utilisation over the run.
    pub ca_utilization: f64,
    /// Lowest sampled ready pods / desired pods.
    pub min_ready_fraction: f64,
    /// Still overloaded at the end although nothing drove the load any more.
    pub metastable: bool,
}

/// A cluster's figures with its name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterFigures {
    /// Cluster name.
    pub name: String,
    /// Its CA.
    pub ca: String,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The summary of one run (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Hash of the resolved scenario.
    pub scenario_hash: String,
    /// Master seed.
    pub seed: u64,
    /// Events executed.
    pub events: u64,
    /// Wall-clock seconds (the only figure that is not deterministic).
    pub wall_s: f64,
    /// Simulated time at the end (s).
    pub sim_end_s: f64,
    /// Why the run ended: horizon, event_budget, drained, stopped.
    pub stop_reason: String,
    /// Trajectory fingerprint (16 hex digits).
    pub trace_hash: String,
    /// Fleet figures.
    #[serde(flatten)]
    pub fleet: Figures,
    /// Per-cluster figures, in cluster order.
    pub clusters: Vec<ClusterFigures>,
}

impl Figures {
    /// Came through cleanly: recovered, upgrade not failed, no pod ever crashlooping,
    /// not metastable.
    pub fn clean(&self) -> bool {
        self.recovered && !self.upgrade_failed && self.peak_crashloop_pods == 0 && !self.metastable
    }
}

impl Summary {
    /// Clusters that did not come through cleanly, worst first (most crashloop
    /// pod-seconds), at most 5: the ones a reader should look at.
    pub fn affected_clusters(&self) -> Vec<String> {
        let mut bad: Vec<_> = self
            .clusters
            .iter()
            .filter(|c| !c.figures.clean())
            .collect();
        bad.sort_by(|a, b| {
            b.figures
                .crashloop_pod_seconds
                .total_cmp(&a.figures.crashloop_pod_seconds)
                .then(a.name.cmp(&b.name))
        });
        bad.into_iter().take(5).map(|c| c.name.clone()).collect()
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("summary serialises");
        s.push('\n');
        s
    }
}
