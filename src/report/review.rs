//! The pre-maintenance review (`fleetsim report`): a scenario — and optionally a sweep's
//! output directory — turned into one self-contained HTML page plus the CSV files every
//! figure is drawn from.
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

use std::fmt::Write as _;
use std::path::Path;

use rayon::prelude::*;

use super::compare::strategy_comparison_from_csv;
use super::html::{CalloutKind, HtmlPage};
use super::plot::{Chart, XAxis};
use super::stats::{quantile, wilson_interval, Proportion};
use super::{failure_curve_from_csv, timeline_from_csv, ReportError};
use crate::duration::{format_duration, format_seconds};
use crate::metrics::predicate::{Predicate, Value, FIGURES};
use crate::metrics::Summary;
use crate::model;
use crate::scenario::{
    Action, Override, Pacing, Scenario, ScenarioDocument, ScenarioErrors, Trigger,
};
use crate::sweep::{
    self, Manifest, SpecErrors, SweepError, SweepSpec, CURVES, DEFAULT_MAX_FAILURE_P,
};

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
    /// The `[strategies]` or `[sweep]` section is malformed.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
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
    let (failure_text, max_p) = match (&input.sweep, &doc.sweep) {
        (Some(s), _) => (s.manifest.failure.clone(), s.manifest.max_failure_p),
        (None, Some(_)) => {
            let spec = SweepSpec::from_document(doc)?;
            (spec.failure, spec.max_failure_p)
        }
        (None, None) => (DEFAULT_FAILURE.to_string(), DEFAULT_MAX_FAILURE_P),
    };
    let failure = Predicate::parse(&failure_text).map_err(|e| {
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
    let declared = sweep::strategies(doc)?;
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
            name: s.name,
            overrides: s.overrides,
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
    let seeds = crate::check::seeds_from(sc.seed, target);

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
            let k = results[c]
                .iter()
                .filter(|s| failure.holds(&s.fleet))
                .count() as u64;
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
    let failures = runs.iter().filter(|s| failure.holds(&s.fleet)).count() as u64;
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
    FIGURES
        .iter()
        .map(|name| match f.get(name) {
            Some(Value::Bool(b)) => u8::from(b).to_string(),
            Some(Value::Num(x)) if x.is_infinite() => String::new(),
            Some(Value::Num(x)) => format!("{x}"),
            None => String::new(),
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

struct PageContext<'a> {
    input: &'a ReviewInput<'a>,
    failure_text: &'a str,
    max_p: f64,
    target: u32,
    base: &'a model::RunOutput,
    strategies: &'a [StrategyResult],
    recommended: Option<usize>,
    rec: Option<(&'a model::RunOutput, &'a Candidate)>,
}

fn interval(p: &Proportion) -> String {
    format!("{:.3} [{:.3}, {:.3}]", p.p, p.lo, p.hi)
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl PageContext<'_> {
    fn link(&self, name: &str) -> String {
        format!("{}/{name}", self.input.files_dir)
    }

    #[allow(clippy::type_complexity)]
    fn render(&self) -> Result<(String, Vec<(String, Vec<u8>)>, usize), ReviewError> {
        let doc = self.input.doc;
        let sc = &doc.scenario;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut figures = 0usize;

        // Data first: every figure below is drawn from one of these texts.
        let base_csv = self.base.recorder.to_csv(&self.base.cluster_names);
        let clusters_csv = self.clusters_csv()?;
        let strategies_csv = strategies_csv(self.strategies, self.recommended);
        let runs_csv = self.strategy_runs_csv()?;

        let base_fails = self.strategies.iter().find(|s| s.changes.is_empty());
        let mut page =
            HtmlPage::new(format!("Pre-maintenance review: {}", sc.name)).subtitle(&format!(
                "{} · seed {} · scenario hash {} · fleetsim {} · regenerate: {}",
                doc.source,
                sc.seed,
                doc.hash,
                env!("CARGO_PKG_VERSION"),
                self.input.command
            ));
        for note in &self.input.notes {
            page = page.callout(CalloutKind::Note, note);
        }
        page = page.section("The scenario in plain words");
        if !sc.description.is_empty() {
            page = page.paragraph(&sc.description);
        }
        let facts = self.facts();
        let facts_ref: Vec<(&str, &str)> = facts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        page = page.facts(&facts_ref);

        page = page.section("Recommendation");
        page = self.recommendation(page, base_fails);

        // Timeline as written.
        page = page.section("Fleet timeline, as written");
        let summary = &self.base.summary;
        let affected = summary.affected_clusters();
        let chart = run_timeline(sc, summary, &base_csv)?;
        let svg = chart.to_svg()?;
        figures += 1;
        let caption = if affected.is_empty() {
            format!(
                "The fleet over time with the scenario as written (seed {}): every cluster comes through cleanly.",
                summary.seed
            )
        } else {
            format!(
                "The fleet over time with the scenario as written (seed {}). Highlighted (dashed, pods in back-off): {}.",
                summary.seed,
                affected.join(", ")
            )
        };
        page = page.figure(&svg, &caption, &self.link("timeseries.csv"));
        files.push(("timeseries.csv".into(), base_csv.into_bytes()));

        if let Some((run, cand)) = self.rec {
            let name = format!("timeseries-{}.csv", file_safe(&cand.name));
            let csv = run.recorder.to_csv(&run.cluster_names);
            let mut chart = run_timeline(&cand.scenario, &run.summary, &csv)?;
            chart.title = format!("{} with {} — seed {}", sc.name, cand.name, run.summary.seed);
            let svg = chart.to_svg()?;
            figures += 1;
            page = page
                .section(&format!("Fleet timeline with {}", cand.name))
                .figure(
                    &svg,
                    &format!(
                        "The same fleet and seed with the recommended strategy {} ({}).",
                        cand.name,
                        self.strategies[self.recommended.unwrap_or(0)].changes
                    ),
                    &self.link(&name),
                );
            files.push((name, csv.into_bytes()));
        }

        page = page.section("Clusters, as written");
        page = self.cluster_table(page);
        files.push(("clusters.csv".into(), clusters_csv.into_bytes()));

        page = page.section("Strategies compared");
        page = page.paragraph(&format!(
            "Each strategy ran on up to {} seeds ({}{}), the same seeds for every strategy. \
             A run fails when \"{}\" holds for the fleet; a strategy qualifies when the upper end of its 95 % Wilson interval is at most {}. \
             A strategy whose whole interval lies above the threshold stops early: more runs cannot make it qualify.",
            self.target,
            sc.seed,
            if self.target > 1 { format!("..{}", sc.seed.wrapping_add(u64::from(self.target) - 1)) } else { String::new() },
            self.failure_text,
            self.max_p
        ));
        let svg = strategy_comparison_from_csv(&strategies_csv, self.max_p)?;
        figures += 1;
        page = page.figure(
            &svg,
            "Failure probability of each strategy with its 95 % interval and the threshold (left); time to recover, median and p95 (right). The recommended strategy is outlined.",
            &self.link("strategies.csv"),
        );
        page = self.strategy_table(page);
        page = page.paragraph(&format!(
            "Every run's figures: {}.",
            self.link("strategy_runs.csv")
        ));
        files.push(("strategies.csv".into(), strategies_csv.into_bytes()));
        files.push(("strategy_runs.csv".into(), runs_csv.into_bytes()));

        if let Some(sw) = &self.input.sweep {
            page = page.section("Failure curves from the sweep");
            let m = &sw.manifest;
            page = page.paragraph(&format!(
                "From {} ({} points x {} seeds, failure: \"{}\", threshold {}).",
                sw.dir, m.points, m.seeds, m.failure, m.max_failure_p
            ));
            match &m.x {
                Some(x) => {
                    let mut chart = failure_curve_from_csv(&sw.curves_csv, x, &m.group.join(","))?;
                    chart.title = format!("{}: P(failure) by {x}", m.scenario);
                    if log_scale(&sw.curves_csv, x) {
                        chart.x_axis = XAxis::Log;
                    }
                    let svg = chart.to_svg()?;
                    figures += 1;
                    page = page.figure(
                        &svg,
                        &format!(
                            "Failure probability by {x}, one line per {} with its 95 % interval.",
                            if m.group.is_empty() {
                                "sweep".to_string()
                            } else {
                                m.group.join(" / ")
                            }
                        ),
                        &self.link("curves.csv"),
                    );
                }
                None => {
                    page = page.paragraph("The sweep has no numeric grid key to draw a curve over; its points are listed below.");
                }
            }
            page = self.sweep_table(page, sw)?;
            files.push(("curves.csv".into(), sw.curves_csv.clone().into_bytes()));
        }

        page = page.section("How to read and regenerate this report").paragraph(&format!(
            "Every figure is drawn from the CSV linked under it, written to {}/ beside this page. \
             The whole review is regenerated by: {}. Each run replays exactly with fleetsim run {} --seed N (add the strategy's changes with --set).",
            self.input.files_dir, self.input.command, doc.source
        ));
        Ok((page.render(), files, figures))
    }

    fn facts(&self) -> Vec<(String, String)> {
        let doc = self.input.doc;
        let sc = &doc.scenario;
        let mut facts = Vec::new();
        // Clusters as declared: templates with their counts.
        let mut declared = Vec::new();
        if let Some(toml::Value::Table(t)) = doc.table().get("cluster") {
            for (name, body) in t {
                let count = body
                    .get("count")
                    .and_then(toml::Value::as_integer)
                    .unwrap_or(1);
                declared.push(if count > 1 {
                    format!("{name} ×{count}")
                } else {
                    name.clone()
                });
            }
        }
        facts.push((
            "Fleet".to_string(),
            format!("{} clusters: {}", sc.clusters.len(), declared.join(", ")),
        ));
        let injected: u64 = sc
            .clusters
            .iter()
            .flat_map(|c| c.workloads.iter())
            .filter(|w| w.injected)
            .map(|w| u64::from(w.replicas))
            .sum();
        let nodes: u64 = sc
            .clusters
            .iter()
            .flat_map(|c| c.node_groups.iter())
            .map(|g| u64::from(g.nodes))
            .sum();
        facts.push((
            "Pods and nodes".into(),
            format!(
                "{} pods ({} with a sidecar), {} nodes",
                thousands(sc.pods_total()),
                thousands(injected),
                thousands(nodes)
            ),
        ));
        let cas: Vec<String> = sc
            .cas
            .iter()
            .map(|ca| {
                let users = sc
                    .clusters
                    .iter()
                    .filter(|c| sc.cas[c.ca].name == ca.name)
                    .count();
                let cfg = &ca.config;
                let service = match cfg.service {
                    crate::ca::ServiceTime::Exponential { mean } => {
                        format!("exponential, mean {}", format_duration(mean))
                    }
                    crate::ca::ServiceTime::Constant { value } => {
                        format!("constant {}", format_duration(value))
                    }
                    crate::ca::ServiceTime::LogNormal { median, p99 } => format!(
                        "lognormal, median {} p99 {}",
                        format_duration(median),
                        format_duration(p99)
                    ),
                };
                let mut s = format!(
                    "{} ({} cluster{}): {} workers, {service}",
                    ca.name,
                    users,
                    if users == 1 { "" } else { "s" },
                    cfg.workers
                );
                if cfg.usl.sigma > 0.0 || cfg.usl.kappa > 0.0 {
                    let _ = write!(
                        s,
                        ", slows under load (σ {}, κ {})",
                        cfg.usl.sigma, cfg.usl.kappa
                    );
                }
                if cfg.failed_object_slowdown > 0.0 {
                    let _ = write!(s, ", +{} per Failed CSR", cfg.failed_object_slowdown);
                }
                if let Some(rl) = cfg.rate_limit {
                    let _ = write!(s, ", rate limit {}/s", rl.rate_per_s);
                }
                s
            })
            .collect();
        facts.push(("Certificate authorities".into(), cas.join("; ")));
        // istiod replicas, grouped by count.
        let mut by: Vec<(u32, Vec<&str>)> = Vec::new();
        for c in &sc.clusters {
            match by.iter_mut().find(|(r, _)| *r == c.istiod.replicas) {
                Some((_, names)) => names.push(&c.name),
                None => by.push((c.istiod.replicas, vec![&c.name])),
            }
        }
        by.sort_by_key(|(_, names)| names.len());
        let istiod: Vec<String> = by
            .iter()
            .map(|(r, names)| {
                if names.len() <= 3 {
                    format!("{r} in {}", names.join(", "))
                } else {
                    format!("{r} in {} other clusters", names.len())
                }
            })
            .collect();
        facts.push(("istiod replicas".into(), istiod.join("; ")));
        let ro = &sc.rollout;
        let waves = if ro.waves.is_empty() {
            "one wave".to_string()
        } else {
            format!(
                "waves of {} clusters, then the rest",
                ro.waves
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let pacing = match &ro.pacing {
            Pacing::AllAtOnce => "evictions all at once".to_string(),
            Pacing::Batches { size, interval } => {
                format!(
                    "batches of {size} pods every {}",
                    format_duration(*interval)
                )
            }
            Pacing::TokenBucket(rl) => format!("token bucket {} pods/s", rl.rate_per_s),
            Pacing::Aimd { initial_per_s, .. } => {
                format!("adaptive (AIMD on CSR errors) from {initial_per_s} pods/s")
            }
        };
        let mut rollout = format!("from {}, {waves}; {pacing}", format_duration(ro.start));
        if ro.health_gate {
            rollout.push_str("; health-gated");
        }
        if let Some(r) = ro.istiod_replicas_during {
            let _ = write!(rollout, "; istiod at {r} during each cluster's upgrade");
        }
        facts.push(("Rollout strategy".into(), rollout));
        let ivs: Vec<String> = sc
            .interventions
            .iter()
            .map(|iv| {
                let when = match &iv.trigger {
                    Trigger::At(t) => format!("at {}", format_duration(*t)),
                    Trigger::When(_) => "on a condition".to_string(),
                };
                let what = match &iv.action {
                    Action::ScaleIstiod { replicas } => format!("istiod to {replicas}"),
                    Action::DeleteFailedCsrs => "delete Failed CSRs".into(),
                    Action::PauseRollout => "pause the rollout".into(),
                    Action::ResumeRollout => "resume the rollout".into(),
                    Action::RestartCrashlooping {
                        batch_size,
                        interval,
                    } => format!(
                        "restart crashlooping pods, {batch_size} every {}",
                        format_duration(*interval)
                    ),
                    Action::SetCa { ca, .. } => format!(
                        "resize CA {}",
                        sc.cas.get(*ca).map_or("?", |c| c.name.as_str())
                    ),
                };
                format!("{what} {when}")
            })
            .collect();
        facts.push((
            "Interventions".into(),
            if ivs.is_empty() {
                "none".into()
            } else {
                ivs.join("; ")
            },
        ));
        facts.push((
            "Failure and threshold".into(),
            format!(
                "a run fails when \"{}\"; acceptable P(failure) ≤ {}",
                self.failure_text, self.max_p
            ),
        ));
        facts.push((
            "Horizon and seed".into(),
            format!("{}, seed {}", format_duration(sc.horizon), sc.seed),
        ));
        facts
    }

    fn recommendation(&self, page: HtmlPage, base: Option<&StrategyResult>) -> HtmlPage {
        let mut page = page;
        if let Some(b) = base {
            if b.failures > 0 {
                let worst = self.base.summary.affected_clusters();
                page = page.callout(
                    CalloutKind::Warning,
                    &format!(
                        "As written, the upgrade fails (\"{}\") in {} of {} runs: P(failure) {}.{}",
                        self.failure_text,
                        b.failures,
                        b.runs.len(),
                        interval(&b.failure),
                        if worst.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " Clusters that do not come through cleanly (seed {}): {}.",
                                self.base.summary.seed,
                                worst.join(", ")
                            )
                        }
                    ),
                );
            }
        }
        match self.recommended {
            Some(i) => {
                let s = &self.strategies[i];
                let qualifying = self.strategies.iter().filter(|s| s.qualifies).count();
                let ties: Vec<&str> = self
                    .strategies
                    .iter()
                    .enumerate()
                    .filter(|(j, t)| *j != i && t.qualifies && t.ttr_p50 == s.ttr_p50)
                    .map(|(_, t)| t.name.as_str())
                    .collect();
                let ties = if ties.is_empty() {
                    String::new()
                } else {
                    format!(
                        " {} {} as fast (listed first wins a tie).",
                        ties.join(", "),
                        if ties.len() == 1 { "is" } else { "are" }
                    )
                };
                let changes = if s.changes.is_empty() {
                    "no change to the scenario".to_string()
                } else {
                    s.changes.clone()
                };
                page.callout(
                    CalloutKind::Recommendation,
                    &format!(
                        "Use {} ({changes}). It failed in {} of {} runs: P(failure) {:.3}, 95 % interval [{:.3}, {:.3}], under the threshold {}. \
                         Median time to recover {} (p95 {}). It is the fastest of the {qualifying} strateg{} that qualify.{ties}",
                        s.name,
                        s.failures,
                        s.runs.len(),
                        s.failure.p,
                        s.failure.lo,
                        s.failure.hi,
                        self.max_p,
                        format_seconds(s.ttr_p50),
                        format_seconds(s.ttr_p95),
                        if qualifying == 1 { "y" } else { "ies" }
                    ),
                )
            }
            None => {
                // Why not: too few runs to show it, or every strategy fails too often.
                let promising = self
                    .strategies
                    .iter()
                    .filter(|s| s.failure.p <= self.max_p)
                    .min_by(|a, b| a.failure.hi.total_cmp(&b.failure.hi));
                let text = match (promising, seeds_to_show(self.max_p)) {
                    (Some(s), Some(need)) => format!(
                        "No strategy qualifies at this number of runs. {} failed in {} of {} runs, but its 95 % interval [{:.3}, {:.3}] reaches above the threshold {}: \
                         run with --seeds {need} or more to show whether it stays under it.",
                        s.name, s.failures, s.runs.len(), s.failure.lo, s.failure.hi, self.max_p
                    ),
                    (Some(s), None) => format!(
                        "No strategy qualifies: the threshold {} is too low to show with any number of runs ({} failed in {} of {}).",
                        self.max_p, s.name, s.failures, s.runs.len()
                    ),
                    (None, _) => {
                        let best = self
                            .strategies
                            .iter()
                            .min_by(|a, b| a.failure.p.total_cmp(&b.failure.p));
                        match best {
                            Some(b) => format!(
                                "No strategy qualifies: every one fails more often than the threshold {}. The least bad, {}, failed in {} of {} runs (P(failure) {}). Change the plan before the window.",
                                self.max_p, b.name, b.failures, b.runs.len(), interval(&b.failure)
                            ),
                            None => "No strategy was run.".to_string(),
                        }
                    }
                };
                page.callout(CalloutKind::Warning, &text)
            }
        }
    }

    fn clusters_csv(&self) -> Result<String, ReviewError> {
        let sc = &self.input.doc.scenario;
        let mut header = vec![
            "cluster".to_string(),
            "ca".to_string(),
            "istiod_replicas".to_string(),
        ];
        header.extend(FIGURES.iter().map(|s| s.to_string()));
        let rows: Vec<Vec<String>> = self
            .base
            .summary
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut row = vec![
                    c.name.clone(),
                    c.ca.clone(),
                    sc.clusters
                        .get(i)
                        .map_or(String::new(), |s| s.istiod.replicas.to_string()),
                ];
                row.extend(figure_cells(&c.figures));
                row
            })
            .collect();
        csv_text(&header, &rows)
    }

    fn strategy_runs_csv(&self) -> Result<String, ReviewError> {
        let mut header = vec![
            "strategy".to_string(),
            "seed".to_string(),
            "failed".to_string(),
        ];
        header.extend(FIGURES.iter().map(|s| s.to_string()));
        header.push("trace_hash".into());
        let failure = Predicate::parse(self.failure_text)
            .map_err(|e| ReviewError::Input(format!("failure predicate: {e}")))?;
        let mut rows = Vec::new();
        for s in self.strategies {
            for r in &s.runs {
                let mut row = vec![
                    s.name.clone(),
                    r.seed.to_string(),
                    u8::from(failure.holds(&r.fleet)).to_string(),
                ];
                row.extend(figure_cells(&r.fleet));
                row.push(r.trace_hash.clone());
                rows.push(row);
            }
        }
        csv_text(&header, &rows)
    }

    fn cluster_table(&self, page: HtmlPage) -> HtmlPage {
        let sc = &self.input.doc.scenario;
        let summary = &self.base.summary;
        // Affected clusters first, then the others in fleet order.
        let mut order: Vec<usize> = (0..summary.clusters.len()).collect();
        order.sort_by_key(|&i| summary.clusters[i].figures.clean());
        let affected = order
            .iter()
            .filter(|&&i| !summary.clusters[i].figures.clean())
            .count();
        let shown: Vec<usize> = order
            .iter()
            .copied()
            .take(MAX_CLUSTER_ROWS.max(affected).min(MAX_TABLE_ROWS))
            .collect();
        let mut highlight = Vec::new();
        let rows: Vec<Vec<String>> = shown
            .iter()
            .enumerate()
            .map(|(row, &i)| {
                let c = &summary.clusters[i];
                let f = &c.figures;
                if !f.clean() {
                    highlight.push(row);
                }
                vec![
                    c.name.clone(),
                    c.ca.clone(),
                    sc.clusters
                        .get(i)
                        .map_or(String::new(), |s| s.istiod.replicas.to_string()),
                    f.pods_total.to_string(),
                    yes(f.recovered).to_string(),
                    format_seconds(f.time_to_recover_s.unwrap_or(f64::INFINITY)),
                    f.peak_crashloop_pods.to_string(),
                    f.csr_timeouts.to_string(),
                    f.csr_failed_objects_peak.to_string(),
                    if f.upgrade_failed {
                        "failed".into()
                    } else {
                        format_seconds(f.upgrade_complete_s.unwrap_or(f64::INFINITY))
                    },
                ]
            })
            .collect();
        let mut page = page.table(
            &[
                "cluster",
                "CA",
                "istiod",
                "pods",
                "recovered",
                "healthy from",
                "peak crashloop",
                "CSR timeouts",
                "Failed CSRs",
                "upgrade done",
            ],
            &rows,
            &highlight,
        );
        let hidden = summary.clusters.len().saturating_sub(shown.len());
        let clean = summary
            .clusters
            .iter()
            .filter(|c| c.figures.clean())
            .count();
        let mut text = format!(
            "Seed {}: {} of {} clusters came through cleanly; the others are highlighted and listed first. \"Healthy from\": when the cluster last became healthy and stayed so.",
            summary.seed,
            clean,
            summary.clusters.len()
        );
        if hidden > 0 {
            let _ = write!(
                text,
                " {hidden} more clean clusters are in {}.",
                self.link("clusters.csv")
            );
        } else {
            let _ = write!(text, " Data: {}.", self.link("clusters.csv"));
        }
        page = page.paragraph(&text);
        page
    }

    fn strategy_table(&self, page: HtmlPage) -> HtmlPage {
        let rows: Vec<Vec<String>> = self
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let verdict = if self.recommended == Some(i) {
                    "recommended"
                } else if s.qualifies {
                    "qualifies"
                } else if s.stopped_early {
                    "fails too often (stopped)"
                } else if s.failure.p <= self.max_p {
                    "not shown with these runs"
                } else {
                    "fails too often"
                };
                vec![
                    s.name.clone(),
                    if s.changes.is_empty() {
                        "(none)".into()
                    } else {
                        s.changes.clone()
                    },
                    s.runs.len().to_string(),
                    s.failures.to_string(),
                    interval(&s.failure),
                    format_seconds(s.ttr_p50),
                    format_seconds(s.ttr_p95),
                    verdict.to_string(),
                ]
            })
            .collect();
        page.table(
            &[
                "strategy",
                "changes",
                "runs",
                "failures",
                "P(failure) [95 %]",
                "recover p50",
                "recover p95",
                "verdict",
            ],
            &rows,
            &self.recommended.into_iter().collect::<Vec<_>>(),
        )
    }

    fn sweep_table(&self, page: HtmlPage, sw: &SweepOutput) -> Result<HtmlPage, ReviewError> {
        let mut reader = csv::ReaderBuilder::new().from_reader(sw.curves_csv.as_bytes());
        let bad = |e: csv::Error| ReviewError::Input(format!("{}/{CURVES}: {e}", sw.dir));
        let headers = reader.headers().map_err(bad)?.clone();
        let col = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                ReviewError::Input(format!("{}/{CURVES}: no column {name:?}", sw.dir))
            })
        };
        let axes: Vec<usize> = sw
            .manifest
            .axes()
            .iter()
            .map(|a| col(a))
            .collect::<Result<_, _>>()?;
        let (c_runs, c_p, c_lo, c_hi) = (
            col("runs")?,
            col("failure_p")?,
            col("failure_lo")?,
            col("failure_hi")?,
        );
        let c_ttr = col("time_to_recover_s_p50")?;
        let mut rows = Vec::new();
        let mut highlight = Vec::new();
        let mut total = 0usize;
        let mut qualifying = 0usize;
        for rec in reader.records() {
            let rec = rec.map_err(bad)?;
            total += 1;
            let num = |c: usize| {
                rec.get(c)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            let ok = num(c_hi) <= sw.manifest.max_failure_p;
            if ok {
                qualifying += 1;
            }
            if rows.len() < MAX_TABLE_ROWS {
                if ok {
                    highlight.push(rows.len());
                }
                let mut row: Vec<String> = axes
                    .iter()
                    .map(|&c| rec.get(c).unwrap_or("").to_string())
                    .collect();
                row.push(rec.get(c_runs).unwrap_or("").to_string());
                row.push(format!(
                    "{:.3} [{:.3}, {:.3}]",
                    num(c_p),
                    num(c_lo),
                    num(c_hi)
                ));
                row.push(format_seconds(num(c_ttr)));
                row.push(if ok { "yes" } else { "no" }.into());
                rows.push(row);
            }
        }
        let axis_names = sw.manifest.axes();
        let mut headers: Vec<&str> = axis_names.iter().map(String::as_str).collect();
        headers.extend([
            "runs",
            "P(failure) [95 %]",
            "recover p50",
            "under threshold",
        ]);
        let mut page = page.table(&headers, &rows, &highlight);
        let mut text = format!(
            "{qualifying} of {total} sweep points have a failure probability under {} with 95 % confidence (highlighted).",
            sw.manifest.max_failure_p
        );
        if total > rows.len() {
            let _ = write!(
                text,
                " The first {} are shown; all are in {}.",
                rows.len(),
                self.link("curves.csv")
            );
        }
        page = page.paragraph(&text);
        Ok(page)
    }
}

/// Whether x spans two decades or more of positive values (then a log axis reads better).
fn log_scale(curves: &str, x: &str) -> bool {
    let mut reader = csv::ReaderBuilder::new().from_reader(curves.as_bytes());
    let Ok(headers) = reader.headers().cloned() else {
        return false;
    };
    let Some(c) = headers.iter().position(|h| h == x) else {
        return false;
    };
    let xs: Vec<f64> = reader
        .records()
        .filter_map(|r| r.ok()?.get(c)?.parse::<f64>().ok())
        .collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi / lo >= 100.0
}

/// A strategy name as part of a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
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
        assert_eq!(thousands(3660), "3,660");
        assert_eq!(thousands(12), "12");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(file_safe("as written"), "as-written");
    }

    #[test]
    fn log_axis_only_for_wide_positive_ranges() {
        assert!(log_scale("x,failure_p\n1,0\n100,1\n", "x"));
        assert!(!log_scale("x,failure_p\n1,0\n50,1\n", "x"));
        assert!(!log_scale("x,failure_p\n0,0\n500,1\n", "x"));
        assert!(!log_scale("garbage", "x"));
    }
}
