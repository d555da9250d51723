//! Many runs in parallel: strategies, grids of overrides over seeds, shards, merges.
//!
//! Each run is a pure `model::run(&Scenario, seed)`; rayon workers take run indices
//! from a shared cursor and results are put back in index order before anything is
//! written, so output never depends on the thread count (STYLE.md rule 8).
//!
//! The pieces, in the order a sweep uses them:
//!
//! - [`strategies`]: the named override bundles of a scenario's `[strategies]` section,
//!   each validated against the document.
//! - [`SweepSpec`] (the `[sweep]` section as written) -> [`Sweep::new`]: every grid
//!   point built and validated before anything runs. Run `index = point * seeds +
//!   seed_index` uses seed `base_seed + seed_index`: the same seeds at every point
//!   (common random numbers).
//! - [`execute`]: runs a [`RunSelection`] (all runs, a [`Shard`], what is left after a
//!   resume) on a rayon pool, handing results to a sink in index order with a bounded
//!   reorder buffer ([`window`]).
//! - [`table`]: `runs.csv` rows and `curves.csv` (computed from the rows).
//! - [`run_into_dir`] / [`merge_dirs`]: the output directory with its manifest and
//!   checkpoint (`--resume`), and the merge of shards.
//!
//! For a report comparing strategies over seeds:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fleetsim::{scenario, sweep};
//! let doc = scenario::load("fleet.toml".as_ref(), &[])?;
//! let names: Vec<String> = sweep::strategies(&doc)?.into_iter().map(|s| s.name).collect();
//! let names: Vec<&str> = names.iter().map(String::as_str).collect();
//! let spec = sweep::SweepSpec::strategies(&names, 20, "not recovered");
//! let sw = sweep::Sweep::new(&doc, spec)?;
//! let pool = sweep::pool(0)?;
//! sweep::execute(&sw, sweep::RunSelection::all(sw.runs()), &pool, |r| {
//!     println!("{} seed {} failed={}", sw.points()[r.id.point].labels[0], r.id.seed, r.failed);
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok(()) }
//! ```

mod error;
mod exec;
mod files;
mod spec;
mod strategy;
pub mod table;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::metrics::Summary;
use crate::model;
use crate::scenario::Scenario;

pub use error::{SpecError, SpecErrors, SweepError};
pub use exec::{execute, pool, window, RunResult, RunSelection, Shard};
pub use files::{
    merge_dirs, run_into_dir, Manifest, ManifestAxis, Outcome, Progress, CURVES, FIGURE_PNG,
    FIGURE_SVG, MANIFEST, MANIFEST_FORMAT, RUNS, RUNS_PARTIAL,
};
pub use spec::{
    label, Axis, Point, RunId, Sweep, SweepSpec, DEFAULT_MAX_FAILURE_P, DEFAULT_SEEDS, MAX_AXES,
    MAX_POINTS, MAX_RUNS, MAX_SEEDS, STRATEGY_KEY,
};
pub use strategy::{find as find_strategy, strategies, Strategy, MAX_STRATEGIES};

/// Runs `sc` once per seed, in parallel on the current rayon pool; summaries come back
/// in the order of `seeds`.
pub fn run_seeds(sc: &Scenario, scenario_hash: &str, seeds: &[u64]) -> Vec<Summary> {
    seeds
        .par_iter()
        .map(|&seed| model::run(sc, seed, scenario_hash).summary)
        .collect()
}
