//! `fleetsim sweep SCENARIO`: the scenario's `[sweep]` grid x seeds on a rayon pool,
//! streamed to `runs.csv`, summarised in `curves.csv` and `failure_curve.svg/.png`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::run::load_scenario;
use super::set::{BudgetArgs, SetArgs};
use crate::sweep::{self, Manifest, Progress, Shard, Sweep};

/// Flags of `fleetsim sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Scenario file (TOML) with a `[sweep]` section (see docs/sweep.md).
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Seeds per grid point (1..=1000000); default: `[sweep] seeds`, else 20.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=sweep::MAX_SEEDS))]
    pub seeds: Option<u64>,
    /// Worker threads (0..=1024); default 0: all cores (or RAYON_NUM_THREADS). Output does
    /// not depend on it.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: u16,
    /// Output directory; default `output/<scenario name>-sweep`, or
    /// `output/<scenario name>-sweep-shard-I-of-N` with `--shard`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only shard I of N: the runs whose index % N == I (0 <= I < N). Join shards
    /// with `fleetsim merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Continue the sweep checkpointed in the output directory (its manifest must match)
    /// without recomputing finished runs; starts afresh if there is no checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Scenario overrides.
    #[command(flatten)]
    pub set: SetArgs,
    /// Memory budget (shared by the runs that run at once).
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// Runs `fleetsim sweep`.
pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let doc = load_scenario(Some(&args.scenario), &args.set)?;
    let sw = Sweep::from_document(&doc, args.seeds)?;
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let out = args.out.clone().unwrap_or_else(|| {
        let name = if shard.is_whole() {
            format!("{}-sweep", sw.scenario_name)
        } else {
            format!(
                "{}-sweep-shard-{}-of-{}",
                sw.scenario_name, shard.index, shard.count
            )
        };
        Path::new("output").join(name)
    });
    let pool = sweep::pool(args.threads as usize)?;
    for p in sw.points() {
        crate::budget::check_run(
            &doc,
            &p.scenario(),
            args.budget.max_memory,
            pool.current_num_threads() as u64,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let selection = sweep::RunSelection::shard(sw.runs(), shard);
    {
        let mut o = std::io::stdout().lock();
        writeln!(
            o,
            "seed={} scenario={} hash={}",
            sw.base_seed, sw.scenario_name, doc.hash
        )?;
        writeln!(
            o,
            "sweep: {} points x {} seeds = {} runs (seeds {}); shard {shard}: {} runs; {} threads; failure: {}",
            sw.points().len(),
            sw.seeds,
            sw.runs(),
            sw.seed_sequence().range_text(),
            selection.count,
            pool.current_num_threads(),
            sw.failure_text
        )?;
        o.flush()?;
    }
    let started = Instant::now();
    let mut reporter = Reporter::new("sweep");
    let outcome = sweep::run_into_dir(&sw, shard, &out, args.resume, &pool, &mut |p| {
        reporter.update(p)
    })?;
    reporter.finish();
    let wall = started.elapsed().as_secs_f64();
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "ran {} runs in {wall:.1} s ({:.1} runs/s){}",
        outcome.ran,
        outcome.ran as f64 / wall.max(1e-9),
        if outcome.resumed > 0 {
            format!("; {} taken from the checkpoint", outcome.resumed)
        } else {
            String::new()
        }
    )?;
    if let Some(curves) = &outcome.curves {
        write!(o, "{}", render_curves(curves, &outcome.manifest))?;
    } else {
        writeln!(
            o,
            "shard {shard} done; join the shards with: fleetsim merge DIR... --out DIR"
        )?;
    }
    writeln!(
        o,
        "replay a run: {} (row `run` of runs.csv: point = run / seeds, seed = {} + run % seeds)",
        sw.replay_command(0),
        sw.base_seed
    )?;
    writeln!(o, "{}", wrote_line(&outcome.files))?;
    Ok(ExitCode::SUCCESS)
}

/// `wrote a, b, c`: the files an outcome wrote, for stdout.
pub fn wrote_line(files: &[std::path::PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    format!("wrote {}", names.join(", "))
}

/// Most curve rows printed on stdout (all are in `curves.csv`).
const MAX_PRINTED_POINTS: usize = 60;

/// The failure probability of every point as a plain table.
pub fn render_curves(curves: &str, m: &Manifest) -> String {
    let mut out = String::new();
    let mut r = csv::Reader::from_reader(curves.as_bytes());
    let Ok(header) = r.headers().cloned() else {
        return out;
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let axes = m.axes();
    let cols: Vec<usize> = axes.iter().filter_map(|a| col(a)).collect();
    let rows: Vec<csv::StringRecord> = r.records().filter_map(Result::ok).collect();
    let widths: Vec<usize> = axes
        .iter()
        .zip(&cols)
        .map(|(a, &c)| {
            rows.iter()
                .take(MAX_PRINTED_POINTS)
                .map(|r| r[c].chars().count())
                .chain([a.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (a, w) in axes.iter().zip(&widths) {
        out += &format!("{a:<w$}  ");
    }
    out += &format!(
        "failures   P(failure) [95 % Wilson]   (accept <= {})\n",
        m.max_failure_p
    );
    let (Some(cf), Some(cr), Some(cp), Some(clo), Some(chi)) = (
        col("failures"),
        col("runs"),
        col("failure_p"),
        col("failure_lo"),
        col("failure_hi"),
    ) else {
        return out;
    };
    for rec in rows.iter().take(MAX_PRINTED_POINTS) {
        for (&c, w) in cols.iter().zip(&widths) {
            out += &format!("{:<w$}  ", &rec[c]);
        }
        out += &format!(
            "{:>4}/{:<4}  {} [{}, {}]\n",
            &rec[cf], &rec[cr], &rec[cp], &rec[clo], &rec[chi]
        );
    }
    if rows.len() > MAX_PRINTED_POINTS {
        out += &format!(
            "... {} more points in curves.csv\n",
            rows.len() - MAX_PRINTED_POINTS
        );
    }
    out
}

/// Progress on stderr: an indicatif bar with ETA on a terminal, a plain line every
/// 10 s (and at the end) otherwise.
pub struct Reporter {
    tty: bool,
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
    started: Instant,
    last_line: Instant,
    last: Option<Progress>,
}

impl Reporter {
    /// A reporter for `what` (`sweep`, `merge`).
    pub fn new(what: &'static str) -> Reporter {
        Reporter {
            tty: std::io::stderr().is_terminal(),
            bar: None,
            what,
            started: Instant::now(),
            last_line: Instant::now(),
            last: None,
        }
    }

    /// Records progress.
    pub fn update(&mut self, p: Progress) {
        if self.tty {
            let what = self.what;
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(p.total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} runs (ETA {eta})",
                    )
                    .expect("valid template"),
                );
                bar.set_prefix(what);
                bar.set_position(p.done);
                bar.reset_eta();
                bar
            });
            bar.set_position(p.done);
        } else if self.last.is_none() || self.last_line.elapsed() >= Duration::from_secs(10) {
            self.line(p);
        }
        self.last = Some(p);
    }

    fn line(&mut self, p: Progress) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let fresh = p.done.saturating_sub(p.resumed);
        let left = p.total.saturating_sub(p.done);
        let eta = if fresh > 0 {
            format!("{:.0} s", elapsed / fresh as f64 * left as f64)
        } else {
            "?".into()
        };
        let pct = if p.total > 0 {
            100.0 * p.done as f64 / p.total as f64
        } else {
            100.0
        };
        eprintln!(
            "{}: {}/{} runs ({pct:.0} %), {elapsed:.0} s elapsed, ETA {eta}",
            self.what, p.done, p.total
        );
        self.last_line = Instant::now();
    }

    /// Ends the bar, or prints the last line.
    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        } else if let Some(p) = self.last {
            self.line(p);
        }
    }
}
