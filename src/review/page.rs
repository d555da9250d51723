//! Assembling the review page from the runs (see the parent module for what it holds).

use std::fmt::Write as _;

use super::{
    csv_text, figure_cells, run_timeline, seeds_to_show, strategies_csv, Candidate, Criterion,
    Decision, ReviewError, ReviewInput, StrategyResult, SweepOutput, MAX_CLUSTER_ROWS,
    MAX_TABLE_ROWS, RANKING,
};
use crate::ca::ServiceTime;
use crate::control::issuer::CasTier;
use crate::duration::{format_duration, format_seconds};
use crate::engine::rng;
use crate::metrics::FIGURES;
use crate::model;
use crate::predicate::Predicate;
use crate::report::compare::strategy_comparison_from_csv;
use crate::report::failure_curve_from_csv;
use crate::report::html::{CalloutKind, HtmlPage};
use crate::report::plot::XAxis;
use crate::scenario::{CaSpec, IssuerKind, Pacing, Scenario, Trigger};
use crate::stats::Proportion;
use crate::sweep::CURVES;

/// Everything the page is drawn from.
pub(super) struct PageContext<'a> {
    pub(super) input: &'a ReviewInput<'a>,
    pub(super) failure_text: &'a str,
    pub(super) max_p: f64,
    pub(super) target: u32,
    pub(super) base: &'a model::RunOutput,
    pub(super) strategies: &'a [StrategyResult],
    pub(super) recommended: Option<usize>,
    pub(super) decision: Option<&'a Decision>,
    pub(super) affected: &'a [String],
    pub(super) affected_is_fleet: bool,
    pub(super) rec: Option<(&'a model::RunOutput, &'a Candidate)>,
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
    pub(super) fn render(&self) -> Result<(String, Vec<(String, Vec<u8>)>, usize), ReviewError> {
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

        // Why each affected cluster failed or stalled, as `fleetsim run` explains it.
        let stories = crate::model::explain::explain(sc, &self.base.summary, &self.base.journal);
        if !stories.is_empty() {
            page = page.section("What happened, as written");
            let rows: Vec<Vec<String>> = stories
                .iter()
                .flat_map(|st| st.lines.iter().map(|l| vec![st.cluster.clone(), l.clone()]))
                .collect();
            page = page.table(&["cluster", "what happened"], &rows, &[]);
        }

        page = page.section("Strategies compared");
        page = page.paragraph(&format!(
            "Each strategy ran on up to {} seeds ({}), the same seeds for every strategy. \
             A run fails when \"{}\" holds for the fleet; a strategy qualifies when the upper end of its 95 % Wilson interval is at most {}. \
             A strategy whose whole interval lies above the threshold stops early: more runs cannot make it qualify.",
            self.target,
            rng::seeds(sc.seed, u64::from(self.target)).range_text(),
            self.failure_text,
            self.max_p
        ));
        page = page.paragraph(&self.rule_text());
        let svg = strategy_comparison_from_csv(&strategies_csv, self.max_p)?;
        figures += 1;
        page = page.figure(
            &svg,
            &format!(
                "Failure probability of each strategy with its 95 % interval and the threshold (left); time to recover of {}, median and p95 (right). The recommended strategy is outlined.",
                self.affected_phrase()
            ),
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
                    crate::report::figures::add_threshold(&mut chart, m.max_failure_p);
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
        let declared: Vec<String> = sc
            .templates
            .iter()
            .map(|t| {
                if t.count > 1 {
                    format!("{} ×{}", t.name, t.count)
                } else {
                    t.name.clone()
                }
            })
            .collect();
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
        let cas: Vec<String> = sc.cas.iter().map(|ca| ca_card(sc, ca)).collect();
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
                let what = crate::model::explain::action_text(sc, &iv.action);
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
                let changes = if s.changes.is_empty() {
                    "no change to the scenario".to_string()
                } else {
                    s.changes.clone()
                };
                page.callout(
                    CalloutKind::Recommendation,
                    &format!(
                        "Use {} ({changes}). It failed in {} of {} runs: P(failure) {:.3}, 95 % interval [{:.3}, {:.3}], under the threshold {}. \
                         On {}: median time to recover {} (p95 {}), lowest ready {}, {} in crashloop. {}",
                        s.name,
                        s.failures,
                        s.runs.len(),
                        s.failure.p,
                        s.failure.lo,
                        s.failure.hi,
                        self.max_p,
                        self.affected_phrase(),
                        format_seconds(s.affected_ttr_p50),
                        format_seconds(s.affected_ttr_p95),
                        Criterion::AffectedMinReady.show(s.affected_min_ready_p50),
                        Criterion::AffectedCrashloopHours.show(s.affected_crashloop_hours_p50),
                        self.why(i)
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

    /// "the affected cluster payments" / "the 3 affected clusters a, b, c" / "all clusters
    /// (none was affected)".
    pub(super) fn affected_phrase(&self) -> String {
        if self.affected_is_fleet {
            return "all clusters (none was affected in any run)".into();
        }
        let n = self.affected.len();
        let shown: Vec<&str> = self.affected.iter().take(5).map(String::as_str).collect();
        let more = if n > 5 {
            format!(" and {} more", n - 5)
        } else {
            String::new()
        };
        if n == 1 {
            format!("the affected cluster {}", shown[0])
        } else {
            format!("the {n} affected clusters {}{more}", shown.join(", "))
        }
    }

    /// Why strategy `winner` was chosen over the other qualifying ones.
    fn why(&self, winner: usize) -> String {
        let Some(d) = self.decision else {
            return String::new();
        };
        if d.others.is_empty() {
            return "It is the only strategy that qualifies.".into();
        }
        let w = &self.strategies[winner];
        let mut out = format!("Of the {} strategies that qualify: ", d.others.len() + 1);
        let mut parts = Vec::new();
        for c in RANKING {
            let behind: Vec<String> = d
                .others
                .iter()
                .filter(|(_, by)| *by == Some(c))
                .map(|&(j, _)| {
                    format!(
                        "{} ({})",
                        self.strategies[j].name,
                        c.show(c.value(&self.strategies[j]))
                    )
                })
                .collect();
            if !behind.is_empty() {
                parts.push(format!(
                    "on {} ({}: {}) {} behind",
                    c.describe(),
                    w.name,
                    c.show(c.value(w)),
                    if behind.len() == 1 {
                        format!("{} falls", behind[0])
                    } else {
                        format!("{} fall", behind.join(", "))
                    }
                ));
            }
        }
        out.push_str(&parts.join("; "));
        let tied: Vec<&str> = d
            .others
            .iter()
            .filter(|(_, by)| by.is_none())
            .map(|&(j, _)| self.strategies[j].name.as_str())
            .collect();
        if !tied.is_empty() {
            if !parts.is_empty() {
                out.push_str("; ");
            }
            let _ = write!(
                out,
                "{} {} with it on every figure, and it is written first",
                tied.join(", "),
                if tied.len() == 1 { "ties" } else { "tie" }
            );
        }
        out.push('.');
        if let Some(c) = d.decided_by {
            if c != RANKING[0] {
                let _ = write!(
                    out,
                    " Ties on the figures before it (within their tolerance) are broken by {}.",
                    c.describe()
                );
            }
        }
        out
    }

    /// The ranking rule, as the page states it.
    pub(super) fn rule_text(&self) -> String {
        let criteria: Vec<String> = RANKING
            .iter()
            .map(|c| {
                format!(
                    "{} ({} is better; within {} counts as a tie)",
                    c.describe(),
                    if c.lower_is_better() {
                        "lower"
                    } else {
                        "higher"
                    },
                    c.tie_text()
                )
            })
            .collect();
        format!(
            "The recommendation is judged on the affected clusters — those that did not come through cleanly (recovered, upgrade not failed, no pod ever crashlooping, not metastable) in at least one run of at least one strategy, here {}. \
             The fleet's own time to recover would not tell strategies apart: the last, healthy wave decides it. \
             Among the strategies that qualify, the first of these that leaves one strategy ahead decides: {}; then the order written.",
            self.affected_phrase(),
            criteria.join(", then ")
        )
    }

    /// `report.json`: what the page concludes, as data (see docs/outputs.md). Times that
    /// never happened and figures without runs are `null`.
    pub(super) fn json(&self) -> String {
        use serde_json::{json, Value};
        let num = |x: f64| {
            if x.is_finite() {
                json!(x)
            } else {
                Value::Null
            }
        };
        let sc = &self.input.doc.scenario;
        let strategies: Vec<Value> = self
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "name": s.name,
                    "changes": s.changes,
                    "runs": s.runs.len(),
                    "failures": s.failures,
                    "failure_p": num(s.failure.p),
                    "failure_lo": num(s.failure.lo),
                    "failure_hi": num(s.failure.hi),
                    "qualifies": s.qualifies,
                    "stopped_early": s.stopped_early,
                    "recommended": self.recommended == Some(i),
                    "affected": {
                        "time_to_recover_s_p50": num(s.affected_ttr_p50),
                        "time_to_recover_s_p95": num(s.affected_ttr_p95),
                        "min_ready_fraction_p50": num(s.affected_min_ready_p50),
                        "crashloop_pod_hours_p50": num(s.affected_crashloop_hours_p50),
                    },
                    "fleet": {
                        "time_to_recover_s_p50": num(s.ttr_p50),
                        "time_to_recover_s_p95": num(s.ttr_p95),
                        "upgrade_complete_s_p50": num(s.upgrade_p50),
                        "peak_crashloop_pods_p50": num(s.crashloop_p50),
                        "peak_crashloop_pods_max": num(s.crashloop_max),
                    },
                })
            })
            .collect();
        let recommendation = match (self.recommended, self.decision) {
            (Some(i), Some(d)) => {
                let s = &self.strategies[i];
                json!({
                    "strategy": s.name,
                    "changes": s.changes,
                    "runs": s.runs.len(),
                    "failures": s.failures,
                    "failure_p": num(s.failure.p),
                    "failure_interval": [num(s.failure.lo), num(s.failure.hi)],
                    "decided_by": d.decided_by.map(Criterion::key),
                    "others": d.others.iter().map(|&(j, by)| json!({
                        "strategy": self.strategies[j].name,
                        "dropped_on": by.map(Criterion::key),
                    })).collect::<Vec<_>>(),
                })
            }
            _ => Value::Null,
        };
        let ranking: Vec<Value> = RANKING
            .iter()
            .map(|c| {
                json!({
                    "figure": c.key(),
                    "better": if c.lower_is_better() { "lower" } else { "higher" },
                    "tie_within": c.tie_within(),
                })
            })
            .collect();
        let doc = json!({
            "scenario": sc.name,
            "source": self.input.doc.source,
            "scenario_hash": self.input.doc.hash,
            "seed": sc.seed,
            "fleetsim_version": env!("CARGO_PKG_VERSION"),
            "command": self.input.command,
            "failure": self.failure_text,
            "max_failure_p": self.max_p,
            "seeds_per_strategy": self.target,
            "seeds": rng::seeds(sc.seed, u64::from(self.target)).range_text(),
            "affected_clusters": self.affected,
            "affected_is_fleet": self.affected_is_fleet,
            "ranking": ranking,
            "recommendation": recommendation,
            "strategies": strategies,
            "files_dir": self.input.files_dir,
        });
        let mut text = serde_json::to_string_pretty(&doc).expect("JSON of plain values");
        text.push('\n');
        text
    }

    fn clusters_csv(&self) -> Result<String, ReviewError> {
        let sc = &self.input.doc.scenario;
        let mut header = vec![
            "cluster".to_string(),
            "ca".to_string(),
            "istiod_replicas".to_string(),
        ];
        header.extend(FIGURES.list().iter().map(|s| s.to_string()));
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
        header.extend(FIGURES.list().iter().map(|s| s.to_string()));
        header.push("trace_hash".into());
        let failure = Predicate::parse(self.failure_text, &FIGURES)
            .map_err(|e| ReviewError::Input(format!("failure predicate: {e}")))?;
        let mut rows = Vec::new();
        for s in self.strategies {
            for r in &s.runs {
                let mut row = vec![
                    s.name.clone(),
                    r.seed.to_string(),
                    u8::from(r.fails(&failure)).to_string(),
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
                "healthy at",
                "peak crashloop",
                "CSR timeouts",
                "Failed CSRs",
                "upgraded at",
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
            "Seed {}: {} of {} clusters came through cleanly; the others are highlighted and listed first. \"Healthy at\": when the cluster last became healthy and stayed so.",
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
                    "too risky (stopped)"
                } else if s.failure.p <= self.max_p {
                    "needs more runs"
                } else {
                    "too risky"
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
                    format_seconds(s.affected_ttr_p50),
                    Criterion::AffectedMinReady.show(s.affected_min_ready_p50),
                    format!("{:.1}", s.affected_crashloop_hours_p50),
                    format_seconds(s.ttr_p50),
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
                "affected: recover p50",
                "affected: lowest ready p50",
                "affected: crashloop pod-h p50",
                "fleet: recover p50",
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

/// One CA on the scenario card: its name, how many clusters use it and the parameters of
/// its kind (a `usl` CA's workers and service time, an AWS Private CA's quotas, ...).
fn ca_card(sc: &Scenario, ca: &CaSpec) -> String {
    let users = sc
        .clusters
        .iter()
        .filter(|c| c.ca.is_some_and(|i| sc.cas[i].name == ca.name))
        .count();
    let mut s = format!(
        "{} ({} cluster{}): ",
        ca.name,
        users,
        if users == 1 { "" } else { "s" }
    );
    match &ca.kind {
        IssuerKind::Usl => {
            let cfg = &ca.config;
            let _ = write!(s, "{} workers, {}", cfg.workers, service_text(&cfg.service));
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
        }
        IssuerKind::AwsPca {
            account,
            config,
            sdk,
            poll_interval,
        } => {
            let _ = write!(
                s,
                "AWS Private CA, account {}: IssueCertificate {}/s (burst {}), GetCertificate {}/s (burst {}), \
                 issue latency {}, API latency {}, polled every {}, SDK {} attempts",
                sc.pca_accounts[*account],
                config.issue_rate_per_s,
                config.issue_burst,
                config.get_rate_per_s,
                config.get_burst,
                format_duration(config.issue_latency),
                format_duration(config.api_latency),
                format_duration(*poll_interval),
                sdk.max_attempts
            );
        }
        IssuerKind::GoogleCas {
            tier,
            location,
            location_rate_per_s,
            latency,
        } => {
            let tier_name = match tier {
                CasTier::Enterprise => "Enterprise",
                CasTier::DevOps => "DevOps",
            };
            let _ = write!(
                s,
                "Google CAS {tier_name} tier, {}/s per CA, location {} ({}/s), latency {}",
                tier.rate_per_s(),
                sc.cas_locations[*location],
                location_rate_per_s,
                format_duration(*latency)
            );
        }
        IssuerKind::Vault(v) => {
            let _ = write!(s, "Vault PKI, /sign {}", service_text(&v.latency));
            if let Some((rate, burst)) = v.rate_limit {
                let _ = write!(s, ", rate limit {rate}/s (burst {burst})");
            }
        }
    }
    s
}

/// A service-time distribution in words.
fn service_text(t: &ServiceTime) -> String {
    match *t {
        ServiceTime::Exponential { mean } => format!("exponential, mean {}", format_duration(mean)),
        ServiceTime::Constant { value } => format!("constant {}", format_duration(value)),
        ServiceTime::LogNormal { median, p99 } => format!(
            "lognormal, median {} p99 {}",
            format_duration(median),
            format_duration(p99)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
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

    /// The card printed a `usl` CA's workers, service time and USL for every CA, whatever
    /// its kind: an AWS Private CA showed "16 workers, exponential, mean 100ms".
    #[test]
    fn report_card_shows_the_ca_kind_in_use_not_usl_fields() {
        let text = include_str!("../../tests/data/full.toml");
        let doc = crate::scenario::load_str("tests/data/full.toml", text, &[]).unwrap();
        let sc = &doc.scenario;
        let card = |name: &str| ca_card(sc, sc.cas.iter().find(|c| c.name == name).unwrap());
        for (name, has) in [
            ("pca-account", "AWS Private CA, account "),
            ("cas", "Google CAS "),
            ("vault-pki", "Vault PKI, /sign lognormal"),
        ] {
            let c = card(name);
            assert!(c.contains(has), "{c}");
            for usl in ["workers", "σ", "κ", "per Failed CSR", "exponential"] {
                assert!(!c.contains(usl), "{name} shows the usl field {usl:?}: {c}");
            }
        }
        let pca = card("pca-account");
        assert!(
            pca.contains("IssueCertificate ") && pca.contains("GetCertificate "),
            "{pca}"
        );
        let usl = card("vault");
        assert!(usl.contains(" workers, "), "{usl}");
        assert!(!usl.contains("AWS") && !usl.contains("Vault PKI"), "{usl}");
    }
}
