//! Metrics: the time series a run samples and the summary it ends with, and the
//! vocabulary of figures that predicates (`[expect]`, the sweep's `failure`) speak.
//!
//! The model fills a [`Recorder`]; nothing here knows how the figures were produced.
//! Both outputs are plain data with stable column and key orders, so the same run
//! gives the same bytes.

use serde::Serialize;

use crate::predicate::{Kind, Value, Values, Vocabulary};

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
    /// Seats in use at the cluster's kube-apiserver (APF, all priority levels).
    pub apiserver_seats: u32,
    /// 429s the apiserver answered since the previous sample.
    pub apiserver_rejected: u64,
    /// CSR objects Pending (created, not approved).
    pub csr_pending: u64,
    /// CSR objects Approved and not yet issued or failed.
    pub csr_approved: u64,
    /// CSR objects Issued (a certificate in status).
    pub csr_issued: u64,
}

/// The CSV header of `timeseries.csv`.
pub const TIMESERIES_HEADER: &str = "time_s,cluster,pods_ready,pods_pending,pods_backoff,pods_desired,nodes_old,nodes_new,istiod_ready,ca_queue,ca_utilization,csr_in_flight,csr_failed_objects,pods_crashloop,apiserver_seats,apiserver_rejected,csr_pending,csr_approved,csr_issued";

/// Collects samples as the run goes.
///
/// Three modes: [`Recorder::default`] holds every sample (what [`to_csv`](Recorder::to_csv)
/// renders); [`Recorder::streaming`] writes each cluster's row of `timeseries.csv` as the
/// sample is taken and holds only the fleet rows (what the figures of a run need); and
/// [`Recorder::fleet_only`] holds the fleet rows and drops the rest (a sweep's or a
/// check's runs, whose time series nobody reads). The fleet rows are one per sample
/// time, so a run's memory no longer grows with clusters x samples.
#[derive(Default)]
pub struct Recorder {
    /// Samples in time order; within a time, clusters in order then the fleet row.
    /// Streaming or fleet-only: the fleet rows alone.
    pub samples: Vec<Sample>,
    mode: Mode,
    /// Samples already streamed or dropped (the fleet rows kept of them).
    settled: usize,
}

#[derive(Default)]
enum Mode {
    #[default]
    Buffer,
    FleetOnly,
    Stream(Box<Stream>),
}

/// The destination of a streaming recorder.
struct Stream {
    out: Box<dyn std::io::Write + Send>,
    names: Vec<String>,
    buf: String,
    error: Option<std::io::Error>,
}

/// Rows are written out in pieces of about this size.
const STREAM_CHUNK: usize = 1 << 16;

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Buffer => "buffer",
            Mode::FleetOnly => "fleet-only",
            Mode::Stream(_) => "stream",
        };
        f.debug_struct("Recorder")
            .field("samples", &self.samples.len())
            .field("mode", &mode)
            .finish()
    }
}

impl Clone for Recorder {
    /// The samples held; a streaming recorder's clone does not stream.
    fn clone(&self) -> Recorder {
        Recorder {
            samples: self.samples.clone(),
            mode: match self.mode {
                Mode::Buffer => Mode::Buffer,
                _ => Mode::FleetOnly,
            },
            settled: self.settled,
        }
    }
}

impl Recorder {
    /// A recorder that writes `timeseries.csv` to `out` as samples are taken (the header
    /// now); `names` maps cluster indices to names. Write errors are kept for
    /// [`finish`](Recorder::finish).
    pub fn streaming(out: Box<dyn std::io::Write + Send>, names: Vec<String>) -> Recorder {
        let mut buf = String::with_capacity(STREAM_CHUNK + 4096);
        buf.push_str(TIMESERIES_HEADER);
        buf.push('\n');
        Recorder {
            samples: Vec::new(),
            mode: Mode::Stream(Box::new(Stream {
                out,
                names,
                buf,
                error: None,
            })),
            settled: 0,
        }
    }

    /// A recorder that keeps the fleet rows only.
    pub fn fleet_only() -> Recorder {
        Recorder {
            mode: Mode::FleetOnly,
            ..Recorder::default()
        }
    }

    /// Settles the samples taken since the last call: streams them (streaming) and
    /// drops all but the fleet rows (streaming, fleet-only). Nothing when buffering.
    pub fn settle(&mut self) {
        if matches!(self.mode, Mode::Buffer) {
            return;
        }
        let mut keep = self.settled;
        for i in self.settled..self.samples.len() {
            let s = self.samples[i];
            if let Mode::Stream(st) = &mut self.mode {
                if st.error.is_none() {
                    write_row(&mut st.buf, &s, &st.names);
                }
            }
            if s.cluster.is_none() {
                self.samples[keep] = s;
                keep += 1;
            }
        }
        self.samples.truncate(keep);
        self.settled = keep;
        if let Mode::Stream(st) = &mut self.mode {
            if st.buf.len() >= STREAM_CHUNK {
                st.write_out();
            }
        }
    }

    /// Ends a streaming recorder: settles what is left and flushes the destination.
    /// The first write error of the run, if any.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.settle();
        let Mode::Stream(mut st) = std::mem::replace(&mut self.mode, Mode::FleetOnly) else {
            return Ok(());
        };
        st.write_out();
        if st.error.is_none() {
            if let Err(e) = st.out.flush() {
                st.error = Some(e);
            }
        }
        match st.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Renders `timeseries.csv`; `names` maps cluster indices to names. Of a streaming
    /// or fleet-only recorder: the fleet rows only.
    pub fn to_csv(&self, names: &[String]) -> String {
        let mut out = String::with_capacity(64 * (self.samples.len() + 1));
        out.push_str(TIMESERIES_HEADER);
        out.push('\n');
        for s in &self.samples {
            write_row(&mut out, s, names);
        }
        out
    }
}

impl Stream {
    fn write_out(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(self.buf.as_bytes()) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
    }
}

/// One row of `timeseries.csv`.
fn write_row(out: &mut String, s: &Sample, names: &[String]) {
    use std::fmt::Write;
    let cluster = match s.cluster {
        Some(i) => names[i as usize].as_str(),
        None => "*",
    };
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{:.4},{},{},{},{},{},{},{},{}",
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
        s.apiserver_seats,
        s.apiserver_rejected,
        s.csr_pending,
        s.csr_approved,
        s.csr_issued,
    );
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
    /// APF 429s at the cluster's apiserver (queue full, time-out in queue).
    pub apiserver_rejections: u64,
    /// Most apiserver seats in use at once.
    pub apiserver_peak_inflight: u64,
    /// Pod creations the injection webhook failed (no ready istiod, or too slow).
    pub webhook_failures: u64,
    /// Sampled seconds with no ready istiod replica.
    pub istiod_unready_s: f64,
    /// CSRs left behind by istiod (failed Delete, istiod gone mid-flow, or the
    /// `delete_csr_on_give_up = false` assumption).
    pub csr_orphaned: u64,
    /// Signer reconciles that found their CSR gone.
    pub csr_skipped_gone: u64,
    /// Readiness-probe failures of istiod replicas (started, informers not yet synced).
    pub istiod_probe_failures: u64,
    /// cert-manager Certificates Ready at the end (absent without Certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates_ready: Option<u64>,
    /// Seconds from their creation until the last Certificate was Ready (absent without
    /// Certificates; null while one is not Ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates_all_ready_s: Option<Option<f64>>,
    /// Certificates renewed by istio-agent's rotation (delivered to a ready pod).
    pub cert_rotations: u64,
    /// Certificates that expired before their rotation delivered a new one.
    pub cert_expired: u64,
    /// `IssueCertificate` calls aws-privateca-issuer sent to AWS Private CA (SDK
    /// retries included; istio-csr clusters).
    pub pca_issue_calls: u64,
}

/// The figures a predicate may name, in the order of [`Figures`]; a time that never
/// happened (`upgrade_complete_s`, `time_to_recover_s` null) reads as +infinity: "never
/// recovered" is later than any bound.
pub static FIGURES: Vocabulary = Vocabulary {
    noun: "figure",
    context: "",
    names: &[
        ("upgrade_complete_s", Kind::Num),
        ("upgrade_failed", Kind::Bool),
        ("recovered", Kind::Bool),
        ("time_to_recover_s", Kind::Num),
        ("peak_crashloop_pods", Kind::Num),
        ("crashloop_pod_seconds", Kind::Num),
        ("pods_total", Kind::Num),
        ("pod_restarts", Kind::Num),
        ("evictions", Kind::Num),
        ("csr_requests", Kind::Num),
        ("csr_timeouts", Kind::Num),
        ("csr_rate_limited", Kind::Num),
        ("csr_failed_objects_peak", Kind::Num),
        ("csr_wasted_signings", Kind::Num),
        ("ca_peak_queue", Kind::Num),
        ("ca_utilization", Kind::Num),
        ("min_ready_fraction", Kind::Num),
        ("metastable", Kind::Bool),
        ("apiserver_rejections", Kind::Num),
        ("apiserver_peak_inflight", Kind::Num),
        ("webhook_failures", Kind::Num),
        ("istiod_unready_s", Kind::Num),
        ("csr_orphaned", Kind::Num),
        ("csr_skipped_gone", Kind::Num),
        ("istiod_probe_failures", Kind::Num),
        ("certificates_ready", Kind::Num),
        ("certificates_all_ready_s", Kind::Num),
        ("cert_rotations", Kind::Num),
        ("cert_expired", Kind::Num),
        ("pca_issue_calls", Kind::Num),
    ],
};

impl Figures {
    /// A figure by name (see [`FIGURES`]).
    pub fn get(&self, name: &str) -> Option<Value> {
        FIGURES.lookup(name).map(|(i, _)| self.value(i))
    }

    /// Figure number `index` of [`FIGURES`] (panics beyond it).
    pub fn value(&self, index: usize) -> Value {
        let time = |t: Option<f64>| Value::Num(t.unwrap_or(f64::INFINITY));
        let n = |x: u64| Value::Num(x as f64);
        match index {
            0 => time(self.upgrade_complete_s),
            1 => Value::Bool(self.upgrade_failed),
            2 => Value::Bool(self.recovered),
            3 => time(self.time_to_recover_s),
            4 => n(u64::from(self.peak_crashloop_pods)),
            5 => Value::Num(self.crashloop_pod_seconds),
            6 => n(u64::from(self.pods_total)),
            7 => n(self.pod_restarts),
            8 => n(self.evictions),
            9 => n(self.csr_requests),
            10 => n(self.csr_timeouts),
            11 => n(self.csr_rate_limited),
            12 => n(self.csr_failed_objects_peak),
            13 => n(self.csr_wasted_signings),
            14 => n(self.ca_peak_queue),
            15 => Value::Num(self.ca_utilization),
            16 => Value::Num(self.min_ready_fraction),
            17 => Value::Bool(self.metastable),
            18 => n(self.apiserver_rejections),
            19 => n(self.apiserver_peak_inflight),
            20 => n(self.webhook_failures),
            21 => Value::Num(self.istiod_unready_s),
            22 => n(self.csr_orphaned),
            23 => n(self.csr_skipped_gone),
            24 => n(self.istiod_probe_failures),
            25 => n(self.certificates_ready.unwrap_or(0)),
            26 => time(self.certificates_all_ready_s.flatten()),
            27 => n(self.cert_rotations),
            28 => n(self.cert_expired),
            29 => n(self.pca_issue_calls),
            _ => panic!("no figure number {index}"),
        }
    }
}

impl Values for Figures {
    fn value(&self, index: usize) -> Value {
        Figures::value(self, index)
    }
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
    /// Events the model scheduled in the past, run at the current time instead (the
    /// kernel's guard that time never goes back). Always 0 unless the model has a bug;
    /// the key appears in `summary.json` only when it is not.
    #[serde(skip_serializing_if = "is_zero")]
    pub clamped_events: u64,
    /// Fleet figures.
    #[serde(flatten)]
    pub fleet: Figures,
    /// Per-cluster figures, in cluster order.
    pub clusters: Vec<ClusterFigures>,
    /// Unsourced mechanisms (or deviations from a release) the scenario turned on.
    pub assumptions: Vec<Assumption>,
}

/// An unsourced mechanism a run relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assumption {
    /// The dotted key that turned it on.
    pub key: String,
    /// Its value as written.
    pub value: String,
    /// What it assumes and why it has no source.
    pub note: String,
}

impl Figures {
    /// Came through cleanly: recovered, upgrade not failed, no pod ever crashlooping,
    /// not metastable.
    pub fn clean(&self) -> bool {
        self.recovered && !self.upgrade_failed && self.peak_crashloop_pods == 0 && !self.metastable
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Whether the event budget cut the run short (its figures are of a fleet in
    /// mid-upgrade, not final).
    pub fn cut_short(&self) -> bool {
        self.stop_reason == "event_budget"
    }

    /// Whether the run counts as failed under `failure` (a sweep's or a report's): the
    /// predicate holds, or the run was cut short, which is never healthy.
    pub fn fails(&self, failure: &crate::predicate::Predicate) -> bool {
        self.cut_short() || failure.holds(&self.fleet)
    }

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

#[cfg(test)]
impl Figures {
    /// A clean run's figures, for tests to edit.
    pub(crate) fn example() -> Figures {
        Figures {
            upgrade_complete_s: Some(100.0),
            upgrade_failed: false,
            recovered: true,
            time_to_recover_s: Some(120.0),
            peak_crashloop_pods: 0,
            crashloop_pod_seconds: 0.0,
            pods_total: 10,
            pod_restarts: 0,
            evictions: 0,
            csr_requests: 10,
            csr_timeouts: 0,
            csr_rate_limited: 0,
            csr_failed_objects_peak: 0,
            csr_wasted_signings: 0,
            ca_peak_queue: 1,
            ca_utilization: 0.1,
            min_ready_fraction: 0.9,
            metastable: false,
            apiserver_rejections: 0,
            apiserver_peak_inflight: 0,
            webhook_failures: 0,
            istiod_unready_s: 0.0,
            csr_orphaned: 0,
            csr_skipped_gone: 0,
            istiod_probe_failures: 0,
            certificates_ready: None,
            certificates_all_ready_s: None,
            cert_rotations: 0,
            cert_expired: 0,
            pca_issue_calls: 0,
        }
    }
}

#[cfg(test)]
impl Summary {
    /// A run's summary around `fleet` and `clusters`, for tests.
    pub(crate) fn example(seed: u64, fleet: Figures, clusters: Vec<ClusterFigures>) -> Summary {
        Summary {
            scenario: "t".into(),
            scenario_hash: "0".into(),
            seed,
            events: 1,
            wall_s: 0.0,
            sim_end_s: 1.0,
            stop_reason: "horizon".into(),
            trace_hash: "0".into(),
            clamped_events: 0,
            fleet,
            clusters,
            assumptions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_resolves_to_a_value_of_its_kind() {
        let mut f = Figures::example();
        f.upgrade_complete_s = None;
        for (i, (name, kind)) in FIGURES.names.iter().enumerate() {
            let v = f.get(name).unwrap();
            assert_eq!(v, f.value(i));
            assert_eq!(matches!(v, Value::Bool(_)), *kind == Kind::Bool, "{name}");
        }
        assert_eq!(f.get("upgrade_complete_s"), Some(Value::Num(f64::INFINITY)));
        assert_eq!(f.get("time_to_recover_s"), Some(Value::Num(120.0)));
        assert_eq!(f.get("nothing"), None);
        // The JSON keys are the figure names, in the same order.
        let json = serde_json::to_value(&f).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names = FIGURES.list();
        // The Certificate figures are left out of the JSON of a run without Certificates.
        names.retain(|n| !n.starts_with("certificates_"));
        names.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, names);

        // A clamped schedule is reported, and only then.
        let mut s = Summary::example(1, f, Vec::new());
        assert!(!s.to_json().contains("clamped_events"));
        s.clamped_events = 3;
        assert!(s.to_json().contains("\"clamped_events\": 3"));
    }
}
