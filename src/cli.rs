//! The command line: flag parsing and dispatch. Exit codes: 0 ok, 1 a check fell short,
//! 2 usage, scenario or IO error. A closed stdout (broken pipe) exits 0.

pub mod ca;
pub mod ca_fit;
pub mod calibrate;
pub mod check;
pub mod compare;
pub mod completions;
pub mod example;
pub mod import;
pub mod man;
pub mod merge;
pub mod report;
pub mod run;
pub mod schema;
pub mod set;
pub mod sweep;
pub mod validate;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a check that fell short.
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for bad usage, a bad scenario or an IO error.
pub const EXIT_BAD_INPUT: u8 = 2;

/// What `fleetsim --version` prints after the name: the crate version and the git
/// commit it was built from (`unknown` outside a git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("FLEETSIM_GIT_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "fleetsim",
    version = VERSION,
    about = "Deterministic simulator of fleet upgrades: EKS node rollouts, Istio sidecars and the CA that signs their certificates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario (default: the embedded incident) and write its summary, time
    /// series and timeline.
    Run(run::RunArgs),
    /// The certificate authority alone under Poisson arrivals, compared with queueing
    /// theory; `ca fit` fits the USL to a load test of the real CA.
    Ca(ca_fit::CaCommand),
    /// Parse and validate scenario files; print every error with file, line and field.
    Validate(validate::ValidateArgs),
    /// Run scenarios over the seeds their `[expect]` sections need and judge every
    /// assertion: exit 0 all hold, 1 any falls short, 2 bad input.
    Check(check::CheckArgs),
    /// The pre-maintenance review: one self-contained HTML page (scenario, timeline,
    /// clusters, strategies compared, failure curves, recommendation) and its CSVs.
    Report(report::ReportArgs),
    /// Run the scenario's [sweep] grid x seeds in parallel: runs.csv, curves.csv and the
    /// failure curve (resumable, shardable).
    Sweep(sweep::SweepArgs),
    /// Join the outputs of `sweep --shard I/N` into the unsharded sweep's outputs.
    Merge(merge::MergeArgs),
    /// Compare a run's time series with observed data (Prometheus query_range JSON or a
    /// timeseries.csv): MAPE, bias, RMSE, peak and time-of-peak error per series.
    Compare(compare::CompareArgs),
    /// Search scenario parameters (--param PATH=LO..HI) for the values whose runs match
    /// observed data best; prints them with the error reached and the --set line.
    Calibrate(calibrate::CalibrateArgs),
    /// Write a scenario from `kubectl get ... -A -o json` of each cluster: node groups,
    /// workloads, injection, PDBs, istiod; every value says where it came from.
    Import(import::ImportArgs),
    /// Print a shipped scenario (embedded), or list them with their descriptions.
    Example(example::ExampleArgs),
    /// Print the scenario format as a JSON Schema (draft-07) for editors such as Even
    /// Better TOML / Taplo.
    Schema(schema::SchemaArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(man::ManArgs),
}

/// Parses `std::env::args` and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Ca(cmd) => ca_fit::run(cmd),
        Command::Validate(args) => validate::run(args),
        Command::Check(args) => check::run(args),
        Command::Report(args) => report::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Import(args) => import::run(args),
        Command::Example(args) => example::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", error_text(&e));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose text the message
/// already holds (an error that prints its source, `{0}` over `#[from]`) is not
/// repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let t = cause.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
