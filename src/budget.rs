//! Budgets checked before a run starts: the memory a run of a scenario will need, from
//! its sizes, against the budget (`[scenario] max_memory`, `--max-memory`; default
//! [`DEFAULT_MAX_MEMORY`]), and rates so small that a run's queues could only grow.
//! A refusal is an exit 2 naming the budget and the flag or key that raises it, in
//! milliseconds instead of an out-of-memory abort an hour in.
//!
//! # The estimate
//! Peak resident memory of `fleetsim run` ≈
//! [`BASE_BYTES`] + clusters × [`PER_CLUSTER_BYTES`] + pods × [`PER_POD_BYTES`] +
//! nodes × [`PER_NODE_BYTES`] + samples × [`PER_SAMPLE_BYTES`] +
//! expected CSRs × [`PER_CSR_BYTES`], where samples = horizon / sample interval and the
//! expected CSRs are one per pod plus one per pod and rotation period (12 h) of the
//! horizon. The constants were measured with `/usr/bin/time -f %M` on this machine's
//! release build (Rust 1.95, x86-64) and rounded up:
//!
//! | fleet | horizon / sample | measured peak RSS | per unit |
//! | --- | --- | --- | --- |
//! | 1 cluster, 2 pods | 1 h / 1 h | 10.6 MiB | the base |
//! | 10 000 clusters x 2 pods | 1 h / 1 h | 42.9 MiB | 3.3 KiB per cluster (its pods, node, istiod, CA client) |
//! | 1 cluster, 1 000 000 pods, 20 000 nodes | 4 h / 1 h | 50.8 MiB | 41 B per pod (and its node share) |
//! | 1 000 clusters x 2 pods | 1 h / 10 s | 144 MiB | 380 B per cluster-sample |
//! | 1 000 clusters x 2 pods | 1 h / 1 s | 1.35 GiB | 392 B per cluster-sample |
//! | scale-200-clusters: 200 x 10 000 pods, 40 000 nodes, 1.64 M CSRs | 4 h / 30 s | 166 MiB | the rest, ~24 B per CSR |
//!
//! The time series was held in memory until the run ended (the two `1 000 clusters`
//! rows above, measured before issue 11 row 4). It is now streamed: `run` writes each
//! cluster's rows of `timeseries.csv` as they are sampled and holds only the fleet rows
//! (one per sample time, for the timeline); sweeps and `check` hold the fleet rows
//! only. So a sample costs [`PER_SAMPLE_BYTES`] whatever the fleet's size, measured
//! after the change:
//!
//! | fleet | horizon / sample | measured peak RSS |
//! | --- | --- | --- |
//! | 1 000 clusters x 2 pods | 1 h / 1 s | 50.7 MiB (was 1.35 GiB), the same at 1 h / 1 h |
//! | 10 000 clusters x 2 pods | 1 h / 1 s | 438 MiB, a 1.57 GB CSV written (was refused: 15 GB estimated) |
//!
//! (The per-cluster cost has grown with the control-plane model since the table above
//! was measured: [`PER_CLUSTER_BYTES`] is now ~43 KiB measured.)
//!
//! Per pod at scale (issue 13), measured with istio-agent's rotation in the model:
//!
//! | fleet | horizon / sample | measured peak RSS | estimate |
//! | --- | --- | --- | --- |
//! | scale-200-clusters: 2 M pods, 40 000 nodes | 4 h / 30 s | 292 MiB when first measured; 204 MiB (2026-12-08) | 341 MiB |
//! | the same x 10 (`--set cluster.c.count=2000 --set 'rollout.waves=[10, 90, 400, 500]'`): 20 M pods, 400 000 nodes | 4 h / 30 s | 2 651 MiB when first measured; 1 974 MiB (9.65x, 2026-12-08) | 3.18 GiB |
//!
//! The difference, 0.98 MiB per cluster of 10 000 pods and 200 nodes, is ~103 B per
//! pod (~137 B when first measured). Where it goes (heaptrack's peak on
//! scale-200-clusters, allocated; sizes from `size_of`): the pod slots, 32 B each
//! (`a_pod_slot_is_32_bytes`; a cluster's vector grows to 16 384 slots for the ~11 000
//! its surge uses: 105 MB allocated, the untouched tail not resident), istio-agent's
//! rotation state, 16 B a slot (34 MB), the pending events (56 B each; the clusters'
//! queues held 6.5 MB at that peak, and 19.7 MB more when a queue's `front` kept its
//! bursts), the API call and istiod flow slots (25 MB, reused), the startup-probe deadlines (16 B, 13 MB), the initial
//! rotations (16 B each, 13 MB, freed as read), the nodes (48 B each and a pod list of
//! `max_pods` x 4 B while it lives, 13 MB). A CSR of istiod's built-in CA costs no
//! object, only its events and the flow and call slots, which are reused (~0 B per CSR
//! beyond the pod's); through the CSR API its object in the cluster's store is 72 B
//! while it lives.
//!
//! Only `run --openmetrics` still reads the whole time series back (its renderer takes
//! the CSV text): [`check_run_buffered`] adds clusters × samples ×
//! [`PER_CLUSTER_SAMPLE_BYTES`] for it. The estimate is deliberately an upper bound for
//! the shipped scenarios (it said 215 MiB for scale-200-clusters buffered, measured
//! 166 MiB).

use crate::numfmt::format_bytes;
use crate::scenario::limits::DEFAULT_MAX_MEMORY;
use crate::scenario::{Scenario, ScenarioDocument, ScenarioError};

/// Memory of the process before the fleet: code, fonts, the allocator's arenas.
pub const BASE_BYTES: u64 = 16 << 20;
/// Per cluster, besides its pods and nodes: its istiod, CA client, apiserver, signer and
/// informers. Measured after the control-plane model grew (Dec 2026): 1 000 clusters x
/// 2 pods, 1 h, peak 50.7 MiB whatever the sample interval (1 s, 10 s, 1 h); 10 000
/// clusters x 2 pods, 1 h / 1 s: 438 MiB, i.e. ~43 KiB per cluster.
pub const PER_CLUSTER_BYTES: u64 = 48 << 10;
/// Per pod (workload replicas and istiod): its slot (32 B, ~1.1 slots per pod with
/// the rollout's surge), its rotation state (16 B per slot), its share of the pending
/// events (~56 B each with the event queue's bucket slack) and of its node's pod list.
/// Measured on scale-200-clusters and its tenfold fleet (see the module docs): ~103 B
/// per pod with its node share (~137 B when this bound was set; kept, an upper bound);
/// with the node and CSR terms the estimate is above both measurements.
pub const PER_POD_BYTES: u64 = 128;
/// Per node.
pub const PER_NODE_BYTES: u64 = 256;
/// Per cluster and sample of a time series held whole (`run --openmetrics`: the CSV
/// text read back and the series drawn from it; measured when every run held it).
pub const PER_CLUSTER_SAMPLE_BYTES: u64 = 420;
/// Per sample time of a streamed run: the fleet row held (72 B) and, at the end, its
/// line of the timeline's CSV and the points drawn from it, rounded up.
pub const PER_SAMPLE_BYTES: u64 = 512;
/// Per CSR expected over the run.
pub const PER_CSR_BYTES: u64 = 32;
/// Workload certificates rotate at about half of their 24 h lifetime.
const ROTATION_S: u64 = 12 * 3600;

/// The estimate of one run's peak memory, by part (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The whole estimate.
    pub total: u64,
    /// Of which the time series (clusters x samples).
    pub time_series: u64,
    /// Clusters x samples.
    pub cluster_samples: u64,
}

/// The estimate for one run of `sc` (see the module docs): the time series streamed.
pub fn estimate(sc: &Scenario) -> MemoryEstimate {
    estimate_with(sc, false)
}

/// The estimate for one run of `sc` with its whole time series in memory.
pub fn estimate_buffered(sc: &Scenario) -> MemoryEstimate {
    estimate_with(sc, true)
}

fn estimate_with(sc: &Scenario, buffered: bool) -> MemoryEstimate {
    let clusters = sc.clusters.len() as u64;
    let pods = sc.pods_total();
    let nodes: u64 = sc
        .clusters
        .iter()
        .flat_map(|c| &c.node_groups)
        .map(|g| u64::from(g.nodes))
        .sum();
    let samples = sc.horizon.as_nanos() / sc.sample_interval.as_nanos().max(1) + 1;
    let cluster_samples = clusters.saturating_mul(samples);
    let horizon_s = sc.horizon.as_nanos() / 1_000_000_000;
    let csrs = pods.saturating_mul(1 + horizon_s / ROTATION_S);
    let time_series = if buffered {
        cluster_samples.saturating_mul(PER_CLUSTER_SAMPLE_BYTES)
    } else {
        samples.saturating_mul(PER_SAMPLE_BYTES)
    };
    let total = BASE_BYTES
        .saturating_add(clusters.saturating_mul(PER_CLUSTER_BYTES))
        .saturating_add(pods.saturating_mul(PER_POD_BYTES))
        .saturating_add(nodes.saturating_mul(PER_NODE_BYTES))
        .saturating_add(time_series)
        .saturating_add(csrs.saturating_mul(PER_CSR_BYTES));
    MemoryEstimate {
        total,
        time_series,
        cluster_samples,
    }
}

/// Where a budget comes from, for the message: the flag, else the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    /// `--max-memory` on the command line.
    Flag,
    /// `[scenario] max_memory` (or its default).
    Scenario,
}

/// The memory budget in force: `--max-memory` if given, else the scenario's.
pub fn memory_budget(sc: &Scenario, flag: Option<u64>) -> (u64, BudgetSource) {
    match flag {
        Some(b) => (b, BudgetSource::Flag),
        None => (sc.max_memory_bytes, BudgetSource::Scenario),
    }
}

/// Checks one run of `doc` (with `flag`, the `--max-memory` value) against the memory
/// budget, and the rates that would make its queues grow without bound. `runs_at_once`
/// runs share the budget (a sweep's threads). The error names the file, the field and
/// the way to raise the budget.
pub fn check_run(
    doc: &ScenarioDocument,
    sc: &Scenario,
    flag: Option<u64>,
    runs_at_once: u64,
) -> Result<MemoryEstimate, ScenarioError> {
    check_with(doc, sc, flag, runs_at_once, estimate(sc))
}

/// [`check_run`] for a run that holds its whole time series (`run --openmetrics`).
pub fn check_run_buffered(
    doc: &ScenarioDocument,
    sc: &Scenario,
    flag: Option<u64>,
) -> Result<MemoryEstimate, ScenarioError> {
    check_with(doc, sc, flag, 1, estimate_buffered(sc))
}

fn check_with(
    doc: &ScenarioDocument,
    sc: &Scenario,
    flag: Option<u64>,
    runs_at_once: u64,
    e: MemoryEstimate,
) -> Result<MemoryEstimate, ScenarioError> {
    check_rates(doc, sc)?;
    let (budget, source) = memory_budget(sc, flag);
    let need = e.total.saturating_mul(runs_at_once.max(1));
    if need <= budget {
        return Ok(e);
    }
    let parallel = if runs_at_once > 1 {
        format!(" x {runs_at_once} runs at once (--threads)")
    } else {
        String::new()
    };
    let why = if e.time_series * 2 > e.total {
        format!(
            "; the time series alone is {} ({} clusters x samples: raise scenario.sample_interval or shorten scenario.horizon)",
            format_bytes(e.time_series),
            e.cluster_samples
        )
    } else {
        String::new()
    };
    let raise = match source {
        BudgetSource::Flag => "raise --max-memory",
        BudgetSource::Scenario if sc.max_memory_bytes == DEFAULT_MAX_MEMORY => {
            "raise it with --max-memory SIZE or [scenario] max_memory"
        }
        BudgetSource::Scenario => "raise scenario.max_memory or give --max-memory SIZE",
    };
    let path = match source {
        BudgetSource::Flag => "",
        BudgetSource::Scenario => "scenario.max_memory",
    };
    let message = format!(
        "a run needs about {}{parallel}, over the memory budget of {}{why}; {raise}",
        format_bytes(e.total),
        format_bytes(budget)
    );
    let mut err = doc.error_at(path, message);
    if path.is_empty() {
        err.path = "memory budget (--max-memory)".into();
    }
    Err(err)
}

/// A CA rate limit that admits less than one request over the whole horizon cannot be
/// meant: every request would wait, and be retried, until the end (memory grows with
/// each). Refused up front. (The model's CA slots are being bounded by the model's
/// owner; this catches the absurd end of the range where the size is known.)
fn check_rates(doc: &ScenarioDocument, sc: &Scenario) -> Result<(), ScenarioError> {
    let horizon_s = sc.horizon.as_nanos() as f64 / 1e9;
    for ca in &sc.cas {
        if let Some(rl) = ca.config.rate_limit {
            if rl.rate_per_s * horizon_s < 1.0 {
                return Err(doc.error_at(
                    &format!("ca.{}.rate_limit_per_s", ca.name),
                    format!(
                        "{}/s admits less than one request in the horizon ({} s): every CSR would wait and be retried until the end; give a rate >= {}/s",
                        if rl.rate_per_s >= 1e-3 { format!("{}", rl.rate_per_s) } else { format!("{:e}", rl.rate_per_s) },
                        horizon_s,
                        crate::numfmt::sig(1.0 / horizon_s, 3)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    fn doc(body: &str) -> ScenarioDocument {
        load_str("m.toml", body, &[]).unwrap()
    }

    const FLEET: &str = r#"
[scenario]
horizon = "1h"
sample_interval = "1s"
[ca.pca]
workers = 8
[cluster.c]
count = 10000
ca = "pca"
[cluster.c.node_group.apps]
nodes = 1
max_pods = 58
[cluster.c.workload.w0]
replicas = 2
"#;

    #[test]
    fn ten_thousand_clusters_sampled_every_second_fit_streamed_not_buffered() {
        let d = doc(FLEET);
        // Streamed (issue 11 row 4): the time series is 3 601 fleet rows, not 36 M rows.
        let e = check_run(&d, &d.scenario, None, 1).unwrap();
        assert_eq!(e.time_series, 3601 * PER_SAMPLE_BYTES);
        assert!(e.total < 1 << 30, "{}", format_bytes(e.total));
        // Held whole (`--openmetrics`), it is refused, naming the time series.
        let e = check_run_buffered(&d, &d.scenario, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("over the memory budget of 4 GiB"), "{e}");
        assert!(e.contains("--max-memory"), "{e}");
        assert!(e.contains("sample_interval"), "{e}");
        // Raised far enough, it runs.
        check_run_buffered(&d, &d.scenario, Some(64 << 30)).unwrap();
    }

    #[test]
    fn the_shipped_scale_scenario_is_within_the_default() {
        let text = include_str!("../scenarios/scale-200-clusters.toml");
        let d = doc(text);
        let e = check_run(&d, &d.scenario, None, 1).unwrap();
        assert!(e.total < 400 << 20, "{}", format_bytes(e.total));
    }

    /// Issue 13: the same fleet ten times larger (20 M pods, 400 000 nodes; measured
    /// 2.59 GiB) is within the default budget and the limits.
    #[test]
    fn the_tenfold_scale_fleet_is_within_the_default() {
        let text = include_str!("../scenarios/scale-200-clusters.toml")
            .replace("count = 200\n", "count = 2000\n")
            .replace("waves = [1, 9, 40, 50]", "waves = [10, 90, 400, 500]");
        let d = doc(&text);
        assert_eq!(d.scenario.clusters.len(), 2000);
        assert_eq!(d.scenario.pods_total(), 20_000_000);
        let e = check_run(&d, &d.scenario, None, 1).unwrap();
        assert!(e.total > 2_651 << 20, "{}", format_bytes(e.total));
        assert!(e.total < 4 << 30, "{}", format_bytes(e.total));
    }
}
