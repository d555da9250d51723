//! `fleetsim calibrate SCENARIO OBSERVED... --param PATH=LO..HI`: the parameter values
//! whose runs match observed data best, and the `--set` line that uses them. The search
//! and its objective are in [`crate::calibrate`].

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use super::compare::{
    alignment_json, alignment_text, load_observed, summary_line, table, Format, ObservedArgs,
};
use super::run::load_scenario;
use super::set::SetArgs;
use crate::calibrate::{check_cluster, Calibration, ParamRange, MAX_ROUNDS, STARTS, TOLERANCE};
use crate::numfmt::sig;
use crate::observed::compare::mean_mape_pct;
use crate::output::shell_quote;
use crate::sweep;

/// Flags of `fleetsim calibrate`.
#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// Scenario file (TOML).
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Observed data: Prometheus query_range JSON responses (one metric per file) and/or
    /// fleetsim timeseries.csv files.
    #[arg(value_name = "OBSERVED", required = true)]
    pub observed: Vec<PathBuf>,
    /// A scenario value to search, by its dotted path, over LO..HI (repeatable, at most
    /// 4): integers (`ca.pca.workers=2..32`), numbers (`ca.pca.contention_sigma=0..0.1`)
    /// or durations (`ca.pca.service_mean=50ms..400ms`).
    #[arg(long = "param", value_name = "PATH=LO..HI", required = true)]
    pub param: Vec<ParamRange>,
    /// How observed data is read and paired.
    #[command(flatten)]
    pub obs: ObservedArgs,
    /// Worker threads (0..=1024); default 0: all cores. The answer does not depend on it.
    #[arg(long, value_name = "N", default_value = "0", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: u16,
    /// Seed of every run; default: the scenario's `[scenario] seed`.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Fixed scenario overrides applied under the searched ones.
    #[command(flatten)]
    pub set: SetArgs,
}

/// Runs `fleetsim calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let doc = load_scenario(Some(&args.scenario), &args.set)?;
    let seed = args.seed.unwrap_or(doc.scenario.seed);
    let header = format!(
        "seed={seed} scenario={} hash={}",
        doc.scenario.name, doc.hash
    );
    check_cluster(&doc, &args.obs.cluster)?;
    let (pairs, alignment) = load_observed(&args.observed, &args.obs)?;
    let cal = Calibration {
        doc: &doc,
        params: &args.param,
        pairs: &pairs,
        cluster: &args.obs.cluster,
        seed,
    };
    cal.check()?;
    if args.format == Format::Text {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{header}")?;
        out.flush()?;
    } else {
        eprintln!("{header}");
    }
    let pool = sweep::pool(args.threads as usize)?;
    let t0 = Instant::now();
    let outcome = cal.run(&pool)?;
    let wall_s = t0.elapsed().as_secs_f64();
    let best = &outcome.best;
    let sets: Vec<String> = args
        .param
        .iter()
        .zip(&best.values)
        .map(|(p, &v)| p.set_text(v))
        .collect();
    let mut replay = format!(
        "fleetsim run {} --seed {seed}",
        shell_quote(&args.scenario.display().to_string())
    );
    for o in args
        .set
        .set
        .iter()
        .map(|o| o.text().to_string())
        .chain(sets.iter().cloned())
    {
        replay.push_str(" --set ");
        replay.push_str(&shell_quote(&o));
    }
    // Runs of a stochastic model with common random numbers give a piecewise-constant
    // objective: every evaluated point with the best error, per parameter.
    let tied: Vec<(f64, f64)> = (0..args.param.len())
        .map(|i| {
            outcome
                .evaluations
                .iter()
                .filter(|e| e.objective <= best.objective * (1.0 + 1e-12))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), e| {
                    (lo.min(e.values[i]), hi.max(e.values[i]))
                })
        })
        .collect();
    let set_line = sets
        .iter()
        .map(|s| format!("--set {}", shell_quote(s)))
        .collect::<Vec<_>>()
        .join(" ");
    let out = match args.format {
        Format::Json => {
            let params: Vec<_> = args
                .param
                .iter()
                .zip(&best.values)
                .enumerate()
                .map(|(i, (p, &v))| {
                    json!({
                        "path": p.path,
                        "kind": p.kind.to_string(),
                        "lo": p.format(p.lo),
                        "hi": p.format(p.hi),
                        "value": p.format(v),
                        "set": p.set_text(v),
                        "same_error_from": p.format(tied[i].0),
                        "same_error_to": p.format(tied[i].1),
                    })
                })
                .collect();
            let history: Vec<_> = outcome
                .evaluations
                .iter()
                .map(|e| {
                    json!({
                        "round": e.round,
                        "values": args.param.iter().zip(&e.values).map(|(p, &v)| p.format(v)).collect::<Vec<_>>(),
                        "objective": e.objective,
                        "failure": e.failure,
                    })
                })
                .collect();
            let mut t = serde_json::to_string_pretty(&json!({
                "scenario": doc.scenario.name,
                "scenario_hash": doc.hash,
                "seed": seed,
                "cluster": args.obs.cluster,
                "objective": "mean NRMSE over the compared series",
                "alignment": alignment_json(&alignment),
                "params": params,
                "error": best.objective,
                "mean_mape_pct": mean_mape_pct(&best.series),
                "series": best.series,
                "evaluations": outcome.evaluations.len(),
                "grid": outcome.grid,
                "starts": STARTS,
                "rounds": outcome.rounds,
                "set": sets,
                "set_line": set_line,
                "replay": replay,
                "wall_s": wall_s,
                "history": history,
            }))?;
            t.push('\n');
            t
        }
        Format::Text => {
            let mut s = String::new();
            s += &format!(
                "calibrate: {} parameter{} against {} observed series (cluster {}); objective: mean NRMSE\n",
                args.param.len(),
                if args.param.len() == 1 { "" } else { "s" },
                pairs.len(),
                args.obs.cluster
            );
            s += &format!("alignment: {}\n", alignment_text(&alignment));
            for p in &args.param {
                s += &format!(
                    "  {:<36} {:<8} {}..{}\n",
                    p.path,
                    p.kind.to_string(),
                    p.format(p.lo),
                    p.format(p.hi)
                );
            }
            s += &format!(
                "search: grid of {} per parameter, then {} refinement round{} from the {STARTS} best grid points (steps / 4 each, to {} of the range, at most {MAX_ROUNDS}): {} evaluations in {wall_s:.2} s on {} threads\n",
                outcome.grid,
                outcome.rounds,
                if outcome.rounds == 1 { "" } else { "s" },
                TOLERANCE,
                outcome.evaluations.len(),
                pool.current_num_threads(),
            );
            s += "best:";
            for (p, &v) in args.param.iter().zip(&best.values) {
                s += &format!(" {} = {}", p.path, p.format(v));
            }
            s += &format!("\nerror reached: mean NRMSE {}\n", sig(best.objective, 4));
            for (p, &(lo, hi)) in args.param.iter().zip(&tied) {
                if hi > lo {
                    s += &format!(
                        "  (the same error at every evaluated {} from {} to {})\n",
                        p.path,
                        p.format(lo),
                        p.format(hi)
                    );
                }
            }
            s += &table(&best.series);
            s += &summary_line(&best.series);
            s += &format!("\nuse: {set_line}\nreplay: {replay}\n");
            s
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
