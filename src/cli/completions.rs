//! `fleetsim completions SHELL`: the shell completion script, generated from the same
//! clap definitions that parse the command line (clap_complete).

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

/// Flags of `fleetsim completions`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Install, for example:
  bash:  fleetsim completions bash > ~/.local/share/bash-completion/completions/fleetsim
  zsh:   fleetsim completions zsh > ~/.zfunc/_fleetsim   (with fpath+=~/.zfunc before compinit)
  fish:  fleetsim completions fish > ~/.config/fish/completions/fleetsim.fish
  elvish, powershell: source the output from your rc file / profile")]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    // Generated in memory first: clap_complete panics on a failed write, and a closed
    // pipe must exit 0 like every other command.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "fleetsim", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}
