//! Many runs in parallel: strategies, grids of overrides over seeds, shards, merges.
//!
//! Each run is a pure `model::run(&Scenario, seed)`; rayon workers take run indices
//! from a shared cursor and results are put back in index order before anything is
//! written, so output never depends on the thread count (STYLE.md rule 8).
//!
//! The pieces, in the order a sweep uses them:
//!
//! - the document's `[sweep]` section, validated at load with every grid point built
//!   ([`crate::scenario::SweepSpec`]; strategies: [`crate::scenario::Strategy`]) ->
//!   [`Sweep::from_document`]: the seeds per point (`--seeds`) and each point's hash.
//!   Run `index = point * seeds + seed_index` uses seed number `seed_index` of
//!   [`seeds`](crate::engine::rng::seeds)`(base_seed, seeds)`: the same seeds at every
//!   point (common random numbers).
//! - [`execute`]: runs a [`RunSelection`] (all runs, a [`Shard`], what is left after a
//!   resume) on a rayon pool, handing results to a sink in index order with a bounded
//!   reorder buffer ([`window`]).
//! - [`table`]: `runs.csv` rows and `curves.csv` (computed from the rows).
//! - [`run_into_dir`] / [`merge_dirs`]: the output directory with its manifest and
//!   checkpoint (`--resume`), and the merge of shards.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fleetsim::{scenario, sweep};
//! let doc = scenario::load("fleet.toml".as_ref(), &[])?;
//! let sw = sweep::Sweep::from_document(&doc, Some(20))?;
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
pub mod table;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::metrics::Summary;
use crate::model;
use crate::scenario::Scenario;

pub use crate::scenario::{MAX_SEEDS, STRATEGY_KEY};
pub use error::SweepError;
pub use exec::{execute, pool, window, RunResult, RunSelection, Shard};
pub use files::{
    merge_dirs, run_into_dir, Manifest, ManifestAxis, Outcome, Progress, CURVES, FIGURE_PNG,
    FIGURE_SVG, MANIFEST, MANIFEST_FORMAT, RUNS, RUNS_PARTIAL,
};
pub use spec::{Point, RunId, Sweep};

/// Runs `sc` once per seed, in parallel on the current rayon pool; summaries come back
/// in the order of `seeds`.
pub fn run_seeds(sc: &Scenario, scenario_hash: &str, seeds: &[u64]) -> Vec<Summary> {
    seeds
        .par_iter()
        .map(|&seed| model::run_summary(sc, seed, scenario_hash).summary)
        .collect()
}
