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
//! **The recommendation** is the fastest strategy (lowest median `time_to_recover_s`,
//! then median `upgrade_complete_s`, then the order written) whose failure probability
//! is under the threshold with 95 % confidence: the upper end of its Wilson interval is
//! at most `max_failure_p`. A run fails when the failure predicate holds for its fleet
//! figures. Both come from the sweep directory's manifest when one is given, else from
//! the scenario's `[sweep]` section, else [`DEFAULT_FAILURE`] and
//! [`DEFAULT_MAX_FAILURE_P`].

use std::path::Path;

use rayon::prelude::*;

mod page;

use page::PageContext;

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
}

/// The review: the page and the files to write beside it.
#[derive(Debug, Clone)]
pub struct Review {
    /// The HTML page.
    pub html: String,
    /// `(file name, bytes)` to write into [`ReviewInput::files_dir`].
    pub files: Vec<(String, Vec<u8>)>,
    /// The strategies compared, in order.
    pub strategies: Vec<StrategyResult>,
    /// Index of the recommended strategy, if any qualifies.
    pub recommended: Option<usize>,
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
    Ok(chart)
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
                .map(|&(c, seed)| model::run(&cands[c].scenario, seed, &cands[c].hash).summary)
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
    let strategies: Vec<StrategyResult> = cands
        .iter()
        .zip(results)
        .zip(&stopped)
        .map(|((c, runs), &early)| summarize(c, runs, early, &failure, max_p))
        .collect();

    let recommended = strategies
        .iter()
        .enumerate()
        .filter(|(_, s)| s.qualifies)
        .min_by(|(i, a), (j, b)| {
            a.ttr_p50
                .total_cmp(&b.ttr_p50)
                .then(a.upgrade_p50.total_cmp(&b.upgrade_p50))
                .then(i.cmp(j))
        })
        .map(|(i, _)| i);

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
        rec: rec_run
            .as_ref()
            .zip(recommended)
            .map(|(r, i)| (r, &cands[i])),
    };
    let (html, files, figures) = ctx.render()?;
    Ok(Review {
        html,
        files,
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

    #[test]
    fn csv_numbers() {
        assert_eq!(csv_num(3.0, 3), "3");
        assert_eq!(csv_num(0.12345, 4), "0.1235");
        assert_eq!(csv_num(f64::INFINITY, 3), "inf");
        assert_eq!(csv_num(f64::NAN, 3), "");
    }
}
