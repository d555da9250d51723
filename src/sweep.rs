//! Many runs in parallel: seeds of one scenario, grids of overrides, shards.
//!
//! Each run is a pure `model::run(&Scenario, seed)`; rayon maps over run indices and
//! results are put back in index order, so output never depends on the thread count.

use rayon::prelude::*;

use crate::metrics::Summary;
use crate::model;
use crate::scenario::Scenario;

/// Runs `sc` once per seed, in parallel on the current rayon pool; summaries come back
/// in the order of `seeds`.
pub fn run_seeds(sc: &Scenario, scenario_hash: &str, seeds: &[u64]) -> Vec<Summary> {
    seeds
        .par_iter()
        .map(|&seed| model::run(sc, seed, scenario_hash).summary)
        .collect()
}
