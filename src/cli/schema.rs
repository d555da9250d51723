//! `fleetsim schema [-o FILE]`: the scenario format as a JSON Schema (draft-07) for
//! editors, derived from the structs the loader reads (see [`crate::scenario::schema`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::run::check_output_file;
use crate::output::write_atomic;
use crate::scenario::schema::json_schema_text;

/// Flags of `fleetsim schema`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Point an editor at it, for example Even Better TOML / Taplo:
  fleetsim schema -o fleetsim.schema.json
  then put `#:schema ./fleetsim.schema.json` as the first line of a scenario,
  or add a [[rule]] with schema.path to .taplo.toml (docs/scenario.md, Editor support)."
)]
pub struct SchemaArgs {
    /// Write the schema to FILE (replaced atomically) instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Prints the schema, or writes it to `--out`.
pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let text = json_schema_text();
    match &args.out {
        Some(path) => {
            check_output_file("-o", path)?;
            write_atomic(path, text.as_bytes())
                .with_context(|| format!("-o {}: cannot write", path.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
