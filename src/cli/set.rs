//! `--set PATH=VALUE`, shared by every command that reads a scenario.

use crate::scenario::Override;

/// Scenario overrides; flatten into a command's arguments with `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SetArgs {
    /// Override one scenario value by its dotted TOML path (repeatable), e.g.
    /// `--set ca.pca.workers=32` or `--set cluster.payments.istiod.replicas=1`.
    /// VALUE is read as TOML (`5`, `2.5`, `true`, `"10s"`, `[1, 5]`), else as a bare
    /// string (`--set ca.pca.service_mean=100ms`). Missing keys of existing tables are
    /// created, so defaults can be overridden; unknown paths are an error.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_override)]
    pub set: Vec<Override>,
}

/// The memory budget of a run; flatten into the commands that run scenarios.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BudgetArgs {
    /// Memory budget of one run (`8GiB`, `512MiB`); default: `[scenario] max_memory`,
    /// else 4 GiB. A run whose estimate (from clusters, pods, nodes, samples and CSRs)
    /// is over it is refused before it starts, with the estimate.
    #[arg(long, value_name = "SIZE", value_parser = crate::numfmt::parse_size)]
    pub max_memory: Option<u64>,
}

fn parse_override(text: &str) -> Result<Override, String> {
    Override::parse(text).map_err(|e| e.reason)
}
