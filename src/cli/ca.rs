//! `fleetsim ca`: the certificate authority alone.

use std::process::ExitCode;

/// Flags of `fleetsim ca` (see DESIGN.md).
#[derive(clap::Args, Debug)]
pub struct CaArgs {}

/// Runs `fleetsim ca`.
pub fn run(_args: CaArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("fleetsim ca: not built yet")
}
