//! `fleetsim validate SCENARIO...`: parse and validate only (the scenario and its
//! `[strategies]`, `[sweep]` and `[expect]` sections).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::set::SetArgs;
use super::EXIT_BAD_INPUT;
use crate::scenario;

/// Flags of `fleetsim validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Scenario files (TOML) to check; `-` reads one from standard input.
    #[arg(value_name = "SCENARIO", required = true)]
    pub scenarios: Vec<PathBuf>,
    /// `--set` overrides, applied to every file.
    #[command(flatten)]
    pub set: SetArgs,
}

/// Validates each file: prints `ok <file> (<n> clusters, <pods> pods, hash <h>)` on
/// stdout, or every error on stderr. Exit 0 when all are valid, 2 when any is not.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let mut invalid = 0usize;
    for path in &args.scenarios {
        // Loading checks `[strategies]`, `[sweep]` (every grid point) and `[expect]` too:
        // a file `validate` accepts never makes `sweep`, `report` or `check` exit 2.
        // Then what `run` and `sweep` check before they start: the memory budget and the
        // sweep as it will run (seeds x points, every point's hash).
        let loaded = scenario::load(path, &args.set.set).and_then(|doc| {
            let mut errors = Vec::new();
            if let Err(e) = crate::budget::check_run(&doc, &doc.scenario, None, 1) {
                errors.push(e);
            }
            if doc.sweep().is_some() {
                if let Err(e) = crate::sweep::Sweep::from_document(&doc, None) {
                    errors.extend(e);
                }
            }
            if errors.is_empty() {
                Ok(doc)
            } else {
                Err(scenario::ScenarioErrors::new(errors))
            }
        });
        match loaded {
            Ok(doc) => writeln!(
                stdout,
                "ok {} ({} clusters, {} pods, hash {})",
                doc.source,
                doc.scenario.clusters.len(),
                doc.scenario.pods_total(),
                doc.hash
            )?,
            Err(errors) => {
                invalid += 1;
                stdout.flush()?;
                let mut stderr = std::io::stderr().lock();
                writeln!(stderr, "{errors}")?;
                let n = errors.len();
                writeln!(
                    stderr,
                    "{}: invalid ({n} error{})",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                )?;
            }
        }
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    })
}
