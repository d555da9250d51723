//! `fleetsim check SCENARIO...`: runs each scenario over the seeds its `[expect]`
//! section needs and judges every assertion.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::run::replay_command;
use super::set::{BudgetArgs, SetArgs};
use super::{EXIT_BAD_INPUT, EXIT_CHECK_FAILED};
use crate::check::{self, Outcome};
use crate::engine::rng;
use crate::scenario::{self, Expectations, ScenarioDocument};
use crate::sweep;

/// Flags of `fleetsim check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Scenario files (TOML) with an `[expect]` section.
    #[arg(value_name = "SCENARIO", required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Worker threads for the runs; default: one per core. Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// `--set` overrides, applied to every file (a regressed strategy, a what-if).
    #[command(flatten)]
    pub set: SetArgs,
    /// Memory budget (shared by the runs that run at once).
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// A scenario ready to check (it has an `[expect]` section).
struct Plan {
    path: PathBuf,
    doc: ScenarioDocument,
}

impl Plan {
    fn expectations(&self) -> &Expectations {
        self.doc.expectations().expect("planned with one")
    }
}

/// Loads every file and its `[expect]` section first: any error (exit 2) is reported
/// before anything runs. Then runs and judges each scenario in turn, printing every
/// assertion with what was measured; exit 1 if any falls short.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut plans = Vec::new();
    let mut invalid = 0usize;
    for path in &args.scenarios {
        match scenario::load(path, &args.set.set) {
            Ok(doc) if doc.expectations().is_some() => plans.push(Plan {
                path: path.clone(),
                doc,
            }),
            Ok(doc) => {
                invalid += 1;
                eprintln!(
                    "{}: no [expect] section: nothing to check (add assert = [...], see docs/check-and-report.md)",
                    doc.source
                );
            }
            Err(errors) => {
                invalid += 1;
                eprintln!("{errors}");
            }
        }
    }
    if invalid > 0 {
        eprintln!(
            "check: {invalid} of {} scenario{} invalid; nothing was run",
            args.scenarios.len(),
            if args.scenarios.len() == 1 {
                " is"
            } else {
                "s are"
            }
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }

    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        pool = pool.num_threads(n as usize);
    }
    let pool = pool.build()?;
    for plan in &plans {
        let d = &plan.doc;
        if let Err(e) = crate::budget::check_run(
            d,
            &d.scenario,
            args.budget.max_memory,
            pool.current_num_threads() as u64,
        ) {
            eprintln!("{e}");
            eprintln!("check: nothing was run");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    }
    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let (mut total, mut failed) = (0usize, 0usize);
    for plan in &plans {
        let sc = &plan.doc.scenario;
        let n = plan.expectations().runs();
        let seeds = rng::seeds(sc.seed, u64::from(n));
        writeln!(
            stdout,
            "{}: scenario={} seeds={} hash={}",
            plan.doc.source,
            sc.name,
            seeds.range_text(),
            plan.doc.hash
        )?;
        stdout.flush()?;
        let t0 = Instant::now();
        let runs = pool.install(|| sweep::run_seeds(sc, &plan.doc.hash, &seeds.to_vec()));
        let wall = t0.elapsed().as_secs_f64();
        // A run the event budget cut short has figures of a fleet in mid-upgrade (nothing
        // failed yet, so "recovered at 0s"): it is never judged, healthy or not.
        let cut: Vec<&crate::metrics::Summary> = runs
            .iter()
            .filter(|r| r.stop_reason == "event_budget")
            .collect();
        if let Some(first) = cut.first() {
            stdout.flush()?;
            eprintln!(
                "error: {}: scenario.max_events: {} of {n} run{} cut short by the event budget ({} events; seed {} stopped at {}s of {}): their figures are not final, so nothing was judged; raise scenario.max_events (--set scenario.max_events=N)",
                plan.doc.source,
                cut.len(),
                if n == 1 { " was" } else { "s were" },
                sc.max_events,
                first.seed,
                crate::numfmt::sig(first.sim_end_s, 4),
                crate::duration::format_duration(sc.horizon),
            );
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        let width = plan
            .expectations()
            .assertions
            .iter()
            .map(|a| a.text.chars().count())
            .max()
            .unwrap_or(0)
            .min(64);
        for a in &plan.expectations().assertions {
            let Outcome {
                holds,
                measured,
                worst,
            } = check::evaluate(a, &runs);
            total += 1;
            let verdict = if holds { "ok  " } else { "FAIL" };
            writeln!(stdout, "  {verdict}  {:<width$}  {measured}", a.text)?;
            if !holds {
                failed += 1;
                if let Some(w) = worst {
                    let at = w.cluster.map(|c| format!(" ({c})")).unwrap_or_default();
                    writeln!(
                        stdout,
                        "        worst run: seed {}{at}; replay: {}",
                        w.seed,
                        replay_command(Some(&plan.path), &args.set, w.seed)
                    )?;
                }
            }
        }
        writeln!(
            stdout,
            "  {n} run{} in {wall:.1} s",
            if n == 1 { "" } else { "s" }
        )?;
    }
    writeln!(
        stdout,
        "{} scenario{}, {total} assertion{}: {}, {:.1} s",
        plans.len(),
        if plans.len() == 1 { "" } else { "s" },
        if total == 1 { "" } else { "s" },
        if failed == 0 {
            "all hold".to_string()
        } else {
            format!("{failed} FAILED")
        },
        started.elapsed().as_secs_f64()
    )?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK_FAILED)
    })
}
