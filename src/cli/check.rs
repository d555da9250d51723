//! `fleetsim check SCENARIO...`: runs each scenario over the seeds its `[expect]`
//! section needs and judges every assertion.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use super::run::{check_output_file, replay_command};
use super::set::{BudgetArgs, SetArgs};
use super::{EXIT_BAD_INPUT, EXIT_CHECK_FAILED};
use crate::check::{self, Outcome};
use crate::engine::rng;
use crate::output::write_atomic;
use crate::scenario::{Expectations, ScenarioDocument};
use crate::sweep;

/// Flags of `fleetsim check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Scenario files (TOML) with an `[expect]` section; `-` reads one from standard input.
    #[arg(value_name = "SCENARIO", required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Worker threads for the runs; default: one per core. Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// What to print on stdout: the verdicts as text, or one JSON document at the end
    /// (progress then goes to stderr; fields in docs/outputs.md).
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Also write the verdicts as JUnit XML to FILE: one test suite per scenario, one
    /// test case per assertion, for CI systems (GitLab, Jenkins, GitHub test reporters).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// `--set` overrides, applied to every file (a regressed strategy, a what-if).
    #[command(flatten)]
    pub set: SetArgs,
    /// Memory budget (shared by the runs that run at once).
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// Output format of `fleetsim check` on stdout.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    /// Verdicts as they come, for people.
    Text,
    /// One JSON document when every scenario is judged.
    Json,
}

/// The verdict on one assertion, as `--format json` and `--junit` give it.
#[derive(serde::Serialize, Debug)]
struct Verdict {
    assertion: String,
    path: String,
    holds: bool,
    measured: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    worst: Option<WorstRun>,
}

#[derive(serde::Serialize, Debug)]
struct WorstRun {
    seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    replay: String,
}

/// One scenario's verdicts.
#[derive(serde::Serialize, Debug)]
struct ScenarioVerdicts {
    file: String,
    scenario: String,
    scenario_hash: String,
    seeds: String,
    runs: u32,
    wall_s: f64,
    assertions: Vec<Verdict>,
}

/// Escapes text for XML attributes and content.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML (the Ant/Surefire schema that Jenkins, GitLab and GitHub reporters read):
/// `<testsuites>` with one `<testsuite>` per scenario file and one `<testcase>` per
/// assertion; a `<failure>` with what was measured and the replay command.
fn junit_xml(all: &[ScenarioVerdicts]) -> String {
    let tests: usize = all.iter().map(|s| s.assertions.len()).sum();
    let failures: usize = all
        .iter()
        .map(|s| s.assertions.iter().filter(|a| !a.holds).count())
        .sum();
    let wall: f64 = all.iter().map(|s| s.wall_s).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"fleetsim check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{wall:.3}\">"
    );
    for s in all {
        let f = s.assertions.iter().filter(|a| !a.holds).count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">",
            xml(&s.file),
            s.assertions.len(),
            s.wall_s
        );
        let _ = writeln!(x, "    <properties>");
        for (k, v) in [
            ("scenario", &s.scenario),
            ("scenario_hash", &s.scenario_hash),
            ("seeds", &s.seeds),
        ] {
            let _ = writeln!(x, "      <property name=\"{k}\" value=\"{}\"/>", xml(v));
        }
        let _ = writeln!(x, "    </properties>");
        for a in &s.assertions {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" time=\"0\"",
                xml(&a.assertion),
                xml(&format!("fleetsim.check.{}", s.scenario)),
                xml(&s.file)
            );
            if a.holds {
                let _ = writeln!(x, ">");
                let _ = writeln!(x, "      <system-out>{}</system-out>", xml(&a.measured));
                let _ = writeln!(x, "    </testcase>");
            } else {
                let _ = writeln!(x, ">");
                let mut body = format!("{} ({}): {}", a.assertion, a.path, a.measured);
                if let Some(w) = &a.worst {
                    let at = w
                        .cluster
                        .as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default();
                    let _ = write!(
                        body,
                        "\nworst run: seed {}{at}\nreplay: {}",
                        w.seed, w.replay
                    );
                }
                let _ = writeln!(
                    x,
                    "      <failure message=\"{}\" type=\"AssertionFailed\">{}</failure>",
                    xml(&format!("{}: {}", a.assertion, a.measured)),
                    xml(&body)
                );
                let _ = writeln!(x, "    </testcase>");
            }
        }
        let _ = writeln!(x, "  </testsuite>");
    }
    x.push_str("</testsuites>\n");
    x
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
    if let Some(p) = &args.junit {
        check_output_file("--junit", p)?;
    }
    let mut plans = Vec::new();
    let mut invalid = 0usize;
    for path in &args.scenarios {
        match super::run::load_path(path, &args.set.set) {
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
    // Text goes to stdout, or to stderr as progress when stdout is JSON.
    let mut stdout: Box<dyn Write> = match args.format {
        CheckFormat::Text => Box::new(std::io::stdout().lock()),
        CheckFormat::Json => Box::new(std::io::stderr().lock()),
    };
    let (mut total, mut failed) = (0usize, 0usize);
    let mut all: Vec<ScenarioVerdicts> = Vec::new();
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
        let mut verdicts = Vec::new();
        for a in &plan.expectations().assertions {
            let Outcome {
                holds,
                measured,
                worst,
            } = check::evaluate(a, &runs);
            total += 1;
            let verdict = if holds { "ok  " } else { "FAIL" };
            writeln!(stdout, "  {verdict}  {:<width$}  {measured}", a.text)?;
            let worst = worst.filter(|_| !holds).map(|w| WorstRun {
                seed: w.seed,
                replay: replay_command(Some(&plan.path), &args.set, w.seed),
                cluster: w.cluster,
            });
            if !holds {
                failed += 1;
                if let Some(w) = &worst {
                    let at = w
                        .cluster
                        .as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default();
                    writeln!(
                        stdout,
                        "        worst run: seed {}{at}; replay: {}",
                        w.seed, w.replay
                    )?;
                }
            }
            verdicts.push(Verdict {
                assertion: a.text.clone(),
                path: a.path.clone(),
                holds,
                measured,
                worst,
            });
        }
        all.push(ScenarioVerdicts {
            file: plan.doc.source.clone(),
            scenario: sc.name.clone(),
            scenario_hash: plan.doc.hash.clone(),
            seeds: seeds.range_text(),
            runs: n,
            wall_s: wall,
            assertions: verdicts,
        });
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
    drop(stdout);
    if let Some(path) = &args.junit {
        write_atomic(path, junit_xml(&all).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.format == CheckFormat::Json {
        let doc = serde_json::json!({
            "assertions": total,
            "failed": failed,
            "holds": failed == 0,
            "wall_s": started.elapsed().as_secs_f64(),
            "scenarios": all,
        });
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK_FAILED)
    })
}
