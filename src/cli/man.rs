//! `fleetsim man [--out-dir DIR]`: the manual page(s) in roff, generated from the clap
//! definitions (clap_mangen), so they never disagree with `--help`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory;

/// Flags of `fleetsim man`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Read it with `fleetsim man | man -l -`; install the pages with
`fleetsim man --out-dir ~/.local/share/man/man1` (or /usr/local/share/man/man1)."
)]
pub struct ManArgs {
    /// Write fleetsim.1 and one page per command (fleetsim-run.1, fleetsim-sweep.1, ...) into DIR instead of
    /// printing fleetsim.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints `fleetsim.1`, or writes every page into `--out-dir`.
pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
    // No page for `help`: generate_to leaves it out, and so does fleetsim.1's list.
    let cmd = super::Cli::command().disable_help_subcommand(true);
    match args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::stdout().lock().write_all(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir).with_context(|| format!("{}", dir.display()))?;
            let mut pages: Vec<String> = std::fs::read_dir(&dir)
                .with_context(|| format!("{}", dir.display()))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("fleetsim") && n.ends_with(".1"))
                .collect();
            pages.sort();
            writeln!(
                std::io::stdout().lock(),
                "wrote {} pages to {}: {}",
                pages.len(),
                dir.display(),
                pages.join(" ")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
