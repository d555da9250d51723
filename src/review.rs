//! The pre-maintenance review (`fleetsim report`): a scenario — and optionally a sweep's
//! output directory — turned into one self-contained HTML page plus the CSV files every
//! figure is drawn from.
//!
//! This layer runs things (the model over seeds, per strategy) and then hands plain data
//! to [`crate::report`], which only draws: the page is assembled (in `review/page.rs`) from the
//! CSV texts written here.
//!
//! What the page holds, in order: the scenario in plain words; the recommendation (or a
//! plain statement that no strategy qualifies); the fleet timeline of the scenario as
//! written, affected clusters highlighted; the timeline with the recommended strategy;
//! the per-cluster table; the strategies compared over seeds; the sweep's failure curves.
//!
//! **Strategies** are the scenario's `[strategies.*]` bundles, plus the scenario as
//! written (unless a bundle is empty, which is the same thing). Each runs on the seeds
//! `seed, seed+1, ...` (common random numbers: every strategy sees the same seeds) in
//! blocks of [`BLOCK_SEEDS`]; a strategy stops early once its whole 95 % interval lies
//! above the threshold (more runs cannot make it qualify). The default number of seeds
//! is the fewest with which a strategy that never fails can show, with 95 % confidence,
//! a failure probability under the threshold (73 for 0.05).
//!
//! **A strategy qualifies** when its failure probability is under the threshold with
//! 95 % confidence: the upper end of its Wilson interval is at most `max_failure_p`. A
//! run fails when the failure predicate holds for its fleet figures. Both come from the
//! sweep directory's manifest when one is given, else from the scenario's `[sweep]`
//! section, else [`DEFAULT_FAILURE`] and [`DEFAULT_MAX_FAILURE_P`].
//!
//! **The recommendation** is judged on the **affected clusters**: those that did not
//! come through cleanly ([`Figures::clean`](crate::metrics::Figures::clean): recovered,
//! upgrade not failed, never a crashlooping pod, not metastable) in at least one run of
//! at least one strategy, the scenario as written included. (If there is none, every
//! cluster counts.) Per run they give three figures: their time to recover (the latest
//! of theirs, +infinity if one never recovered), their lowest ready fraction and their
//! crashloop pod-hours (summed). The fleet's own time to recover is no help here: the last
//! healthy wave decides it, whatever happened to the affected clusters, so strategies that
//! differ where it matters tie on it. The qualifying strategies are ranked by the medians
//! over their runs of the criteria of [`RANKING`], in order: a strategy stays in the
//! running while its value is within the criterion's tolerance of the best one; the
//! first criterion that leaves one strategy decides; if several remain after all of
//! them, the one written first wins and the tie is stated.

use std::path::Path;

use rayon::prelude::*;

mod page;

use page::PageContext;

use crate::duration::format_seconds;
use crate::engine::rng;
use crate::metrics::{Summary, FIGURES};
use crate::model;
use crate::predicate::{Predicate, Value};
use crate::report::plot::Chart;
use crate::report::{timeline_from_csv, ReportError};
use crate::scenario::{
    Override, Scenario, ScenarioDocument, ScenarioErrors, Trigger, DEFAULT_MAX_FAILURE_P,
};
use crate::stats::{quantile, wilson_interval, Proportion};
use crate::sweep::{Manifest, SweepError, CURVES};

/// The failure predicate when neither a sweep nor the scenario gives one.
pub const DEFAULT_FAILURE: &str = "not recovered";
/// Seeds run per strategy between early-stopping decisions.
pub const BLOCK_SEEDS: u32 = 10;
/// Most seeds per strategy.
pub const MAX_REVIEW_SEEDS: u32 = 10_000;
/// Seeds per strategy when the threshold is so low that no count can show it (0).
const FALLBACK_SEEDS: u32 = 20;
/// Most rows of the per-cluster and sweep tables on the page (the CSVs hold all).
const MAX_TABLE_ROWS: usize = 40;
/// Most rows of the per-cluster table: the affected clusters first, then clean ones.
const MAX_CLUSTER_ROWS: usize = 12;
/// The name of the scenario as written among the strategies.
pub const AS_WRITTEN: &str = "as written";

/// What can stop a review. Each names the input that is wrong; none is a panic.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// A strategy bundle gives an invalid scenario.
    #[error("{0}")]
    Scenario(#[from] ScenarioErrors),
    /// The sweep directory cannot be read.
    #[error("{0}")]
    Sweep(#[from] SweepError),
    /// A figure cannot be drawn.
    #[error("{0}")]
    Report(#[from] ReportError),
    /// Something else about the inputs (named in the message).
    #[error("{0}")]
    Input(String),
}

/// A sweep's output directory, read for the review.
#[derive(Debug, Clone)]
pub struct SweepOutput {
    /// The directory as named by the caller.
    pub dir: String,
    /// Its `manifest.json`.
    pub manifest: Manifest,
    /// Its `curves.csv`.
    pub curves_csv: String,
}

impl SweepOutput {
    /// Reads `DIR/manifest.json` and `DIR/curves.csv` (a complete sweep or a merge).
    pub fn read(dir: &Path) -> Result<SweepOutput, ReviewError> {
        let manifest = Manifest::read(dir)?;
        let path = dir.join(CURVES);
        let curves_csv = std::fs::read_to_string(&path).map_err(|e| {
            ReviewError::Input(format!(
                "{}: cannot read: {e} (a complete sweep or a merge writes it)",
                path.display()
            ))
        })?;
        Ok(SweepOutput {
            dir: dir.display().to_string(),
            manifest,
            curves_csv,
        })
    }
}

/// What the review is built from.
#[derive(Debug, Clone)]
pub struct ReviewInput<'a> {
    /// The scenario (with the command line's `--set` overrides).
    pub doc: &'a ScenarioDocument,
    /// A sweep's output, for the failure curves.
    pub sweep: Option<SweepOutput>,
    /// Seeds per strategy; `None`: enough to show the threshold (see the module docs).
    pub seeds: Option<u32>,
    /// The command that regenerates the review (printed on the page).
    pub command: String,
    /// Name of the directory beside the page holding the CSVs (`report-files`).
    pub files_dir: String,
    /// Caveats to show at the top of the page (e.g. a scenario changed since its sweep).
    pub notes: Vec<String>,
}

/// One strategy's results over its seeds.
#[derive(Debug, Clone)]
pub struct StrategyResult {
    /// Its name ([`AS_WRITTEN`] for the scenario as written).
    pub name: String,
    /// Its overrides as `PATH=VALUE`, comma-separated (empty for the scenario as written).
    pub changes: String,
    /// Summaries of its runs, in seed order.
    pub runs: Vec<Summary>,
    /// Runs in which the failure predicate held.
    pub failures: u64,
    /// Failure probability with its 95 % Wilson interval.
    pub failure: Proportion,
    /// Median and p95 of `time_to_recover_s` (+infinity: never).
    pub ttr_p50: f64,
    /// See `ttr_p50`.
    pub ttr_p95: f64,
    /// Median `upgrade_complete_s` (+infinity: never).
    pub upgrade_p50: f64,
    /// Median and largest `peak_crashloop_pods`.
    pub crashloop_p50: f64,
    /// See `crashloop_p50`.
    pub crashloop_max: f64,
    /// Stopped before the planned seeds because it could no longer qualify.
    pub stopped_early: bool,
    /// Its interval's upper end is at most the threshold.
    pub qualifies: bool,
    /// Median and p95 of the affected clusters' time to recover (+infinity: never).
    pub affected_ttr_p50: f64,
    /// See `affected_ttr_p50`.
    pub affected_ttr_p95: f64,
    /// Median of the affected clusters' lowest ready fraction.
    pub affected_min_ready_p50: f64,
    /// Median of the affected clusters' crashloop pod-hours.
    pub affected_crashloop_hours_p50: f64,
}

/// A figure the qualifying strategies are ranked by (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// Median time to recover of the affected clusters: lower is better.
    AffectedTimeToRecover,
    /// Median lowest ready fraction of the affected clusters: higher is better.
    AffectedMinReady,
    /// Median crashloop pod-hours of the affected clusters: lower is better.
    AffectedCrashloopHours,
    /// Median time to recover of the whole fleet: lower is better.
    FleetTimeToRecover,
    /// Median time to a fully upgraded fleet: lower is better.
    UpgradeComplete,
}

/// The ranking of qualifying strategies, first criterion first.
pub const RANKING: [Criterion; 5] = [
    Criterion::AffectedTimeToRecover,
    Criterion::AffectedMinReady,
    Criterion::AffectedCrashloopHours,
    Criterion::FleetTimeToRecover,
    Criterion::UpgradeComplete,
];

impl Criterion {
    /// The key naming it in `report.json` and `strategies.csv`.
    pub fn key(self) -> &'static str {
        match self {
            Criterion::AffectedTimeToRecover => "affected_time_to_recover_s_p50",
            Criterion::AffectedMinReady => "affected_min_ready_fraction_p50",
            Criterion::AffectedCrashloopHours => "affected_crashloop_pod_hours_p50",
            Criterion::FleetTimeToRecover => "time_to_recover_s_p50",
            Criterion::UpgradeComplete => "upgrade_complete_s_p50",
        }
    }

    /// What it is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Criterion::AffectedTimeToRecover => "the affected clusters' median time to recover",
            Criterion::AffectedMinReady => "the affected clusters' median lowest ready fraction",
            Criterion::AffectedCrashloopHours => {
                "the affected clusters' median crashloop pod-hours"
            }
            Criterion::FleetTimeToRecover => "the fleet's median time to recover",
            Criterion::UpgradeComplete => "the median time to a fully upgraded fleet",
        }
    }

    /// Lower values are better.
    pub fn lower_is_better(self) -> bool {
        !matches!(self, Criterion::AffectedMinReady)
    }

    /// Values this close to the best count as equal (in the figure's unit).
    pub fn tie_within(self) -> f64 {
        match self {
            Criterion::AffectedTimeToRecover | Criterion::FleetTimeToRecover => 60.0,
            Criterion::AffectedMinReady => 0.01,
            Criterion::AffectedCrashloopHours => 0.1,
            Criterion::UpgradeComplete => 60.0,
        }
    }

    /// The tolerance for people.
    pub fn tie_text(self) -> &'static str {
        match self {
            Criterion::AffectedTimeToRecover
            | Criterion::FleetTimeToRecover
            | Criterion::UpgradeComplete => "1 min",
            Criterion::AffectedMinReady => "1 percentage point",
            Criterion::AffectedCrashloopHours => "0.1 pod-hours",
        }
    }

    /// A strategy's value (NaN when it has no runs).
    pub fn value(self, s: &StrategyResult) -> f64 {
        match self {
            Criterion::AffectedTimeToRecover => s.affected_ttr_p50,
            Criterion::AffectedMinReady => s.affected_min_ready_p50,
            Criterion::AffectedCrashloopHours => s.affected_crashloop_hours_p50,
            Criterion::FleetTimeToRecover => s.ttr_p50,
            Criterion::UpgradeComplete => s.upgrade_p50,
        }
    }

    /// A value for people: a duration, a percentage or pod-hours.
    pub fn show(self, v: f64) -> String {
        match self {
            Criterion::AffectedMinReady if v.is_finite() => format!("{:.1} %", 100.0 * v),
            Criterion::AffectedCrashloopHours if v.is_finite() => format!("{v:.1} pod-hours"),
            Criterion::AffectedMinReady | Criterion::AffectedCrashloopHours => "n/a".into(),
            _ => format_seconds(v),
        }
    }

    /// `v` as a number to compare: NaN (no runs) is the worst value.
    fn comparable(self, v: f64) -> f64 {
        match (v.is_nan(), self.lower_is_better()) {
            (false, _) => v,
            (true, true) => f64::INFINITY,
            (true, false) => f64::NEG_INFINITY,
        }
    }

    /// Whether `v` is within the tolerance of `best` (two infinities of one sign are equal).
    fn ties(self, v: f64, best: f64) -> bool {
        v == best || (v - best).abs() <= self.tie_within()
    }
}

/// How the recommendation was reached among the qualifying strategies.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The recommended strategy (index into the strategies).
    pub winner: usize,
    /// The criterion that left it alone; `None` when it was the only one qualifying, or
    /// when it won a tie on every criterion by being written first.
    pub decided_by: Option<Criterion>,
    /// Every other qualifying strategy with the criterion it dropped out on (`None`:
    /// tied on every criterion).
    pub others: Vec<(usize, Option<Criterion>)>,
}

/// Ranks the qualifying strategies by [`RANKING`] (see the module docs); `None` when
/// none qualifies.
pub fn decide(strategies: &[StrategyResult]) -> Option<Decision> {
    let mut left: Vec<usize> = (0..strategies.len())
        .filter(|&i| strategies[i].qualifies)
        .collect();
    if left.is_empty() {
        return None;
    }
    let single = left.len() == 1;
    let mut others = Vec::new();
    let mut decided_by = None;
    for c in RANKING {
        if left.len() == 1 {
            break;
        }
        let v = |i: usize| c.comparable(c.value(&strategies[i]));
        let best = left
            .iter()
            .map(|&i| v(i))
            .fold(None, |acc: Option<f64>, x| match acc {
                None => Some(x),
                Some(b) if c.lower_is_better() => Some(b.min(x)),
                Some(b) => Some(b.max(x)),
            })
            .unwrap_or(f64::NAN);
        let (keep, out): (Vec<usize>, Vec<usize>) = left.iter().partition(|&&i| c.ties(v(i), best));
        others.extend(out.iter().map(|&i| (i, Some(c))));
        if keep.len() == 1 && !out.is_empty() {
            decided_by = Some(c);
        }
        left = keep;
    }
    let winner = left[0];
    others.extend(left[1..].iter().map(|&i| (i, None)));
    others.sort_by_key(|&(i, _)| i);
    Some(Decision {
        winner,
        decided_by: if single { None } else { decided_by },
        others,
    })
}

/// The clusters a review judges strategies on: those that did not come through cleanly
/// in at least one of `runs` (every strategy's runs), in the order of the first run
/// that lists them; empty when every cluster was clean in every run.
pub fn affected_clusters<'a>(runs: impl IntoIterator<Item = &'a Summary>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in runs {
        for c in &s.clusters {
            if !c.figures.clean() && !out.contains(&c.name) {
                out.push(c.name.clone());
            }
        }
    }
    out
}

/// One run's figures over a set of clusters: the latest time to recover (+infinity if
/// one never recovered), the lowest ready fraction, crashloop pod-hours summed. Clusters
/// the run does not have are left out; `None` when it has none of them.
pub fn affected_figures(run: &Summary, clusters: &[String]) -> Option<(f64, f64, f64)> {
    let mut found = false;
    let (mut ttr, mut ready, mut hours) = (f64::NEG_INFINITY, f64::INFINITY, 0.0);
    for c in run.clusters.iter().filter(|c| clusters.contains(&c.name)) {
        found = true;
        let f = &c.figures;
        ttr = ttr.max(f.time_to_recover_s.unwrap_or(f64::INFINITY));
        ready = ready.min(f.min_ready_fraction);
        hours += f.crashloop_pod_seconds / 3600.0;
    }
    found.then_some((ttr, ready, hours))
}

/// The review: the page and the files to write beside it.
#[derive(Debug, Clone)]
pub struct Review {
    /// The HTML page.
    pub html: String,
    /// `report.json`: the recommendation, its interval and each strategy's figures.
    pub json: String,
    /// `(file name, bytes)` to write into [`ReviewInput::files_dir`].
    pub files: Vec<(String, Vec<u8>)>,
    /// The strategies compared, in order.
    pub strategies: Vec<StrategyResult>,
    /// Index of the recommended strategy, if any qualifies.
    pub recommended: Option<usize>,
    /// How it was chosen among the qualifying strategies.
    pub decision: Option<Decision>,
    /// The clusters the strategies were judged on (see the module docs).
    pub affected: Vec<String>,
    /// No cluster was affected in any run: `affected` is every cluster.
    pub affected_is_fleet: bool,
    /// The failure predicate and threshold used.
    pub failure: String,
    /// See `failure`.
    pub max_failure_p: f64,
    /// Figures on the page (each an inline SVG).
    pub figures: usize,
    /// Model runs made.
    pub runs: u64,
}

/// The timeline of one run with its scenario's timed interventions as markers and its
/// affected clusters highlighted (as `fleetsim run` draws it).
pub fn run_timeline(sc: &Scenario, summary: &Summary, csv: &str) -> Result<Chart, ReportError> {
    let highlight = summary.affected_clusters();
    let mut chart = timeline_from_csv(csv, &highlight)?;
    chart.title = format!("{} — seed {}", sc.name, summary.seed);
    for iv in &sc.interventions {
        if let Trigger::At(t) = iv.trigger {
            chart = chart.marker(t.as_secs_f64(), iv.name.clone());
        }
    }
    for (wave, t) in wave_starts(sc, summary, csv) {
        chart = chart.marker(t, format!("wave {}", wave + 1));
    }
    Ok(chart)
}

/// At most this many waves get a marker on the timeline (the first ones).
const MAX_WAVE_MARKERS: usize = 12;

/// When each wave of the rollout started, seen in `timeseries.csv`: the first sample at
/// which a cluster of the wave has fewer nodes on the old AMI or more on the new one
/// than at the start. `(wave index, time in s)` for the waves that started, none when
/// the rollout is one wave.
pub fn wave_starts(sc: &Scenario, summary: &Summary, csv: &str) -> Vec<(usize, f64)> {
    let names: Vec<&str> = summary.clusters.iter().map(|c| c.name.as_str()).collect();
    // The wave of each cluster, in cluster order; clusters beyond the sum: a last wave.
    let mut wave_of = Vec::with_capacity(names.len());
    for (w, &n) in sc.rollout.waves.iter().enumerate() {
        wave_of.extend(std::iter::repeat_n(w, n as usize));
    }
    let waves = sc.rollout.waves.len() + usize::from(wave_of.len() < names.len());
    wave_of.resize(names.len(), sc.rollout.waves.len());
    if waves < 2 {
        return Vec::new();
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let Ok(headers) = reader.headers().cloned() else {
        return Vec::new();
    };
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(ct), Some(cc), Some(co), Some(cn)) = (
        col("time_s"),
        col("cluster"),
        col("nodes_old"),
        col("nodes_new"),
    ) else {
        return Vec::new();
    };
    let mut first: Vec<Option<(f64, f64)>> = vec![None; names.len()];
    let mut start: Vec<f64> = vec![f64::INFINITY; waves];
    for rec in reader.records().map_while(Result::ok) {
        let Some(i) = rec.get(cc).and_then(|c| names.iter().position(|n| *n == c)) else {
            continue;
        };
        let num = |k: usize| rec.get(k).and_then(|v| v.parse::<f64>().ok());
        let (Some(t), Some(old), Some(new)) = (num(ct), num(co), num(cn)) else {
            continue;
        };
        match first[i] {
            None => first[i] = Some((old, new)),
            Some((o0, n0)) if old < o0 || new > n0 => {
                let w = wave_of[i];
                start[w] = start[w].min(t);
            }
            Some(_) => {}
        }
    }
    start
        .into_iter()
        .enumerate()
        .filter(|(_, t)| t.is_finite())
        .take(MAX_WAVE_MARKERS)
        .collect()
}

/// The fewest runs with which a strategy that never fails shows a failure probability
/// of at most `max_p` with 95 % confidence (73 for 0.05); `None` if no count up to
/// [`MAX_REVIEW_SEEDS`] can.
pub fn seeds_to_show(max_p: f64) -> Option<u32> {
    (1..=MAX_REVIEW_SEEDS)
        .find(|&n| wilson_interval(0, u64::from(n)).is_some_and(|w| w.hi <= max_p))
}

struct Candidate {
    name: String,
    overrides: Vec<Override>,
    scenario: Scenario,
    hash: String,
}

/// Builds the review: runs the scenario as written (for the timeline and the cluster
/// table), every strategy over the seeds, the recommended strategy once more for its
/// timeline, and assembles the page. Runs go to `pool`; nothing is written here.
pub fn build(input: &ReviewInput<'_>, pool: &rayon::ThreadPool) -> Result<Review, ReviewError> {
    let doc = input.doc;
    let sc = &doc.scenario;
    let (failure_text, max_p) = match (&input.sweep, doc.sweep()) {
        (Some(s), _) => (s.manifest.failure.clone(), s.manifest.max_failure_p),
        (None, Some(spec)) => (spec.failure_text.clone(), spec.max_failure_p),
        (None, None) => (DEFAULT_FAILURE.to_string(), DEFAULT_MAX_FAILURE_P),
    };
    let failure = Predicate::parse(&failure_text, &FIGURES).map_err(|e| {
        ReviewError::Input(format!(
            "{}: failure predicate {failure_text:?}: {e}",
            doc.source
        ))
    })?;
    if !(0.0..=1.0).contains(&max_p) {
        return Err(ReviewError::Input(format!(
            "{}: max_failure_p must be in [0, 1], got {max_p}",
            doc.source
        )));
    }

    // Candidates: the scenario as written, then the declared strategies.
    let declared = doc.strategies();
    let mut cands = Vec::new();
    if !declared.iter().any(|s| s.overrides.is_empty()) {
        cands.push(Candidate {
            name: AS_WRITTEN.into(),
            overrides: Vec::new(),
            scenario: sc.clone(),
            hash: doc.hash.clone(),
        });
    }
    for s in declared {
        let d = doc.with_overrides(&s.overrides)?;
        cands.push(Candidate {
            name: s.name.clone(),
            overrides: s.overrides.clone(),
            scenario: d.scenario,
            hash: d.hash,
        });
    }

    let target = match input.seeds {
        Some(n) if (1..=MAX_REVIEW_SEEDS).contains(&n) => n,
        Some(n) => {
            return Err(ReviewError::Input(format!(
                "--seeds must be 1..={MAX_REVIEW_SEEDS}, got {n}"
            )))
        }
        None => seeds_to_show(max_p).unwrap_or(FALLBACK_SEEDS),
    };
    let seeds = rng::seeds(sc.seed, u64::from(target)).to_vec();

    // The scenario as written, with its time series.
    let base = pool.install(|| model::run(sc, sc.seed, &doc.hash));
    let mut runs_made = 1u64;

    // Strategies over seeds, in blocks, with early stopping.
    let mut results: Vec<Vec<Summary>> = vec![Vec::new(); cands.len()];
    let mut stopped = vec![false; cands.len()];
    let mut done = 0usize;
    while done < seeds.len() && stopped.iter().any(|s| !s) {
        let block = (seeds.len() - done).min(BLOCK_SEEDS as usize);
        let jobs: Vec<(usize, u64)> = (0..cands.len())
            .filter(|&c| !stopped[c])
            .flat_map(|c| seeds[done..done + block].iter().map(move |&s| (c, s)))
            .collect();
        let out: Vec<Summary> = pool.install(|| {
            jobs.par_iter()
                .map(|&(c, seed)| {
                    model::run_summary(&cands[c].scenario, seed, &cands[c].hash).summary
                })
                .collect()
        });
        runs_made += jobs.len() as u64;
        for ((c, _), summary) in jobs.iter().zip(out) {
            results[*c].push(summary);
        }
        done += block;
        for c in 0..cands.len() {
            if stopped[c] || done >= seeds.len() {
                continue;
            }
            let n = results[c].len() as u64;
            let k = results[c].iter().filter(|s| s.fails(&failure)).count() as u64;
            if wilson_interval(k, n).is_some_and(|w| w.lo > max_p) {
                stopped[c] = true;
            }
        }
    }
    // The clusters the strategies are judged on: not clean in some run of some strategy.
    let mut affected = affected_clusters(results.iter().flatten());
    let affected_is_fleet = affected.is_empty();
    if affected_is_fleet {
        affected = base.cluster_names.clone();
    }
    let strategies: Vec<StrategyResult> = cands
        .iter()
        .zip(results)
        .zip(&stopped)
        .map(|((c, runs), &early)| summarize(c, runs, early, &failure, max_p, &affected))
        .collect();

    let decision = decide(&strategies);
    let recommended = decision.as_ref().map(|d| d.winner);

    // The recommended strategy's own timeline (same seed), unless it is the scenario.
    let rec_run = match recommended {
        Some(i) if !cands[i].overrides.is_empty() => {
            runs_made += 1;
            Some(pool.install(|| model::run(&cands[i].scenario, sc.seed, &cands[i].hash)))
        }
        _ => None,
    };

    let ctx = PageContext {
        input,
        failure_text: &failure_text,
        max_p,
        target,
        base: &base,
        strategies: &strategies,
        recommended,
        decision: decision.as_ref(),
        affected: &affected,
        affected_is_fleet,
        rec: rec_run
            .as_ref()
            .zip(recommended)
            .map(|(r, i)| (r, &cands[i])),
    };
    let (html, files, figures) = ctx.render()?;
    let json = ctx.json();
    Ok(Review {
        html,
        json,
        files,
        affected,
        affected_is_fleet,
        decision,
        strategies,
        recommended,
        failure: failure_text,
        max_failure_p: max_p,
        figures,
        runs: runs_made,
    })
}

fn summarize(
    c: &Candidate,
    runs: Vec<Summary>,
    stopped_early: bool,
    failure: &Predicate,
    max_p: f64,
    affected: &[String],
) -> StrategyResult {
    let n = runs.len() as u64;
    let failures = runs.iter().filter(|s| s.fails(failure)).count() as u64;
    let prop = wilson_interval(failures, n).unwrap_or(Proportion {
        p: f64::NAN,
        lo: 0.0,
        hi: 1.0,
    });
    let values = |f: &dyn Fn(&Summary) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let ttr = values(&|s| s.fleet.time_to_recover_s.unwrap_or(f64::INFINITY));
    let upgrade = values(&|s| s.fleet.upgrade_complete_s.unwrap_or(f64::INFINITY));
    let crash = values(&|s| f64::from(s.fleet.peak_crashloop_pods));
    let q = |v: &[f64], p: f64| quantile(v, p).unwrap_or(f64::NAN);
    let per_run: Vec<(f64, f64, f64)> = runs
        .iter()
        .filter_map(|r| affected_figures(r, affected))
        .collect();
    let a_ttr: Vec<f64> = per_run.iter().map(|a| a.0).collect();
    let a_ready: Vec<f64> = per_run.iter().map(|a| a.1).collect();
    let a_hours: Vec<f64> = per_run.iter().map(|a| a.2).collect();
    StrategyResult {
        name: c.name.clone(),
        changes: c
            .overrides
            .iter()
            .map(|o| o.text().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        failures,
        failure: prop,
        ttr_p50: q(&ttr, 0.5),
        ttr_p95: q(&ttr, 0.95),
        upgrade_p50: q(&upgrade, 0.5),
        crashloop_p50: q(&crash, 0.5),
        crashloop_max: crash.iter().copied().fold(0.0, f64::max),
        stopped_early,
        qualifies: n > 0 && prop.hi <= max_p,
        affected_ttr_p50: q(&a_ttr, 0.5),
        affected_ttr_p95: q(&a_ttr, 0.95),
        affected_min_ready_p50: q(&a_ready, 0.5),
        affected_crashloop_hours_p50: q(&a_hours, 0.5),
        runs,
    }
}

/// A CSV number: whole values without decimals, `inf` for +infinity, empty for NaN.
fn csv_num(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        String::new()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.decimals$}")
    }
}

/// Writes rows as CSV text.
fn csv_text(header: &[String], rows: &[Vec<String>]) -> Result<String, ReviewError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| ReviewError::Input(format!("writing CSV: {e}"));
    w.write_record(header).map_err(io)?;
    for r in rows {
        w.write_record(r).map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReviewError::Input(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ReviewError::Input(format!("writing CSV: {e}")))
}

fn figure_cells(f: &crate::metrics::Figures) -> Vec<String> {
    (0..FIGURES.names.len())
        .map(|i| match f.value(i) {
            Value::Bool(b) => u8::from(b).to_string(),
            Value::Num(x) if x.is_infinite() => String::new(),
            Value::Num(x) => format!("{x}"),
        })
        .collect()
}

/// The strategies' table as `strategies.csv` (what the comparison figure reads).
pub fn strategies_csv(strategies: &[StrategyResult], recommended: Option<usize>) -> String {
    let header: Vec<String> = [
        "strategy",
        "changes",
        "runs",
        "failures",
        "failure_p",
        "failure_lo",
        "failure_hi",
        "time_to_recover_s_p50",
        "time_to_recover_s_p95",
        "upgrade_complete_s_p50",
        "peak_crashloop_pods_p50",
        "peak_crashloop_pods_max",
        "affected_time_to_recover_s_p50",
        "affected_time_to_recover_s_p95",
        "affected_min_ready_fraction_p50",
        "affected_crashloop_pod_hours_p50",
        "stopped_early",
        "qualifies",
        "recommended",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                s.name.clone(),
                s.changes.clone(),
                s.runs.len().to_string(),
                s.failures.to_string(),
                csv_num(s.failure.p, 4),
                csv_num(s.failure.lo, 4),
                csv_num(s.failure.hi, 4),
                csv_num(s.ttr_p50, 3),
                csv_num(s.ttr_p95, 3),
                csv_num(s.upgrade_p50, 3),
                csv_num(s.crashloop_p50, 3),
                csv_num(s.crashloop_max, 3),
                csv_num(s.affected_ttr_p50, 3),
                csv_num(s.affected_ttr_p95, 3),
                csv_num(s.affected_min_ready_p50, 4),
                csv_num(s.affected_crashloop_hours_p50, 3),
                u8::from(s.stopped_early).to_string(),
                u8::from(s.qualifies).to_string(),
                u8::from(recommended == Some(i)).to_string(),
            ]
        })
        .collect();
    csv_text(&header, &rows).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_needed_to_show_a_threshold() {
        assert_eq!(seeds_to_show(0.05), Some(73));
        assert_eq!(seeds_to_show(0.1), Some(35));
        assert_eq!(seeds_to_show(1.0), Some(1));
        assert_eq!(seeds_to_show(0.0), None);
        let w = wilson_interval(0, 73).unwrap();
        assert!(w.hi <= 0.05 && wilson_interval(0, 72).unwrap().hi > 0.05);
    }

    fn strategy(name: &str, qualifies: bool, ttr: f64, ready: f64, hours: f64) -> StrategyResult {
        StrategyResult {
            name: name.into(),
            changes: String::new(),
            runs: Vec::new(),
            failures: 0,
            failure: wilson_interval(0, 73).unwrap(),
            ttr_p50: 1800.0,
            ttr_p95: 1800.0,
            upgrade_p50: 3600.0,
            crashloop_p50: 0.0,
            crashloop_max: 0.0,
            stopped_early: false,
            qualifies,
            affected_ttr_p50: ttr,
            affected_ttr_p95: ttr,
            affected_min_ready_p50: ready,
            affected_crashloop_hours_p50: hours,
        }
    }

    #[test]
    fn the_affected_clusters_decide_and_ties_fall_through() {
        // The fleet's time to recover ties for all; the affected clusters' does not.
        let s = [
            strategy("as written", false, f64::INFINITY, 0.2, 9.0),
            strategy("slow", true, 2400.0, 0.9, 1.0),
            strategy("fast", true, 1200.0, 0.8, 2.0),
        ];
        let d = decide(&s).unwrap();
        assert_eq!(d.winner, 2);
        assert_eq!(d.decided_by, Some(Criterion::AffectedTimeToRecover));
        assert_eq!(d.others, vec![(1, Some(Criterion::AffectedTimeToRecover))]);
        // Within a minute of each other: the lowest ready fraction breaks the tie.
        let s = [
            strategy("a", true, 1200.0, 0.8, 2.0),
            strategy("b", true, 1230.0, 0.9, 2.0),
        ];
        let d = decide(&s).unwrap();
        assert_eq!(
            (d.winner, d.decided_by),
            (1, Some(Criterion::AffectedMinReady))
        );
        // Equal on every figure: the one written first, and the tie is recorded.
        let s = [
            strategy("a", true, 1200.0, 0.8, 2.0),
            strategy("b", true, 1200.0, 0.8, 2.0),
        ];
        let d = decide(&s).unwrap();
        assert_eq!((d.winner, d.decided_by), (0, None));
        assert_eq!(d.others, vec![(1, None)]);
        // Never recovering is worse than any time; no runs (NaN) worst of all.
        let s = [
            strategy("never", true, f64::INFINITY, 0.8, 2.0),
            strategy("none", true, f64::NAN, f64::NAN, f64::NAN),
            strategy("late", true, 90_000.0, 0.1, 50.0),
        ];
        assert_eq!(decide(&s).unwrap().winner, 2);
        assert!(decide(&[strategy("x", false, 1.0, 1.0, 0.0)]).is_none());
        let only = decide(&[strategy("x", true, 1.0, 1.0, 0.0)]).unwrap();
        assert_eq!(
            (only.winner, only.decided_by, only.others.len()),
            (0, None, 0)
        );
    }

    #[test]
    fn wave_starts_are_read_from_the_node_counts() {
        use crate::metrics::ClusterFigures;
        let doc = crate::scenario::load_str(
            "w.toml",
            "[ca.pca]\n[cluster.a]\n[cluster.b]\n[cluster.c]\n[rollout]\nwaves = [1, 1]\n",
            &[],
        )
        .unwrap();
        let cluster = |n: &str| ClusterFigures {
            name: n.into(),
            ca: "pca".into(),
            figures: crate::metrics::Figures::example(),
        };
        let summary = Summary::example(
            1,
            crate::metrics::Figures::example(),
            vec![cluster("a"), cluster("b"), cluster("c")],
        );
        let csv = "time_s,cluster,nodes_old,nodes_new\n\
            0,a,3,0\n0,b,3,0\n0,c,3,0\n\
            10,a,3,1\n10,b,3,0\n10,c,3,0\n\
            20,a,0,3\n20,b,2,3\n20,c,3,0\n";
        // Wave 3 (cluster c) never started.
        assert_eq!(
            wave_starts(&doc.scenario, &summary, csv),
            vec![(0, 10.0), (1, 20.0)]
        );
        let one = crate::scenario::load_str("o.toml", "[ca.pca]\n[cluster.a]\n", &[]).unwrap();
        assert!(wave_starts(&one.scenario, &summary, csv).is_empty());
    }

    #[test]
    fn csv_numbers() {
        assert_eq!(csv_num(3.0, 3), "3");
        assert_eq!(csv_num(0.12345, 4), "0.1235");
        assert_eq!(csv_num(f64::INFINITY, 3), "inf");
        assert_eq!(csv_num(f64::NAN, 3), "");
    }
}
