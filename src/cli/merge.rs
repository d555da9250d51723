//! `fleetsim merge DIR... --out DIR`: joins the outputs of `fleetsim sweep --shard I/N`
//! into the outputs of the unsharded sweep, byte for byte.

use super::sweep::wrote_line;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::sweep::{render_curves, Reporter};
use crate::sweep;

/// Flags of `fleetsim merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Shard output directories (each with manifest.json and runs.csv), in any order;
    /// every shard 0..N of one sweep exactly once.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write runs.csv, curves.csv, failure_curve.svg/.png and manifest.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `fleetsim merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut reporter = Reporter::new("merge");
    let outcome = sweep::merge_dirs(&args.dirs, &args.out, &mut |p| reporter.update(p))?;
    reporter.finish();
    let m = &outcome.manifest;
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "merged {} shards of {} ({} runs, hash {})",
        args.dirs.len(),
        m.scenario,
        m.runs,
        m.scenario_hash
    )?;
    if let Some(curves) = &outcome.curves {
        write!(o, "{}", render_curves(curves, m))?;
    }
    writeln!(o, "{}", wrote_line(&outcome.files))?;
    Ok(ExitCode::SUCCESS)
}
