//! A sweep ready to run: the document's `[sweep]` section (validated at load, every
//! point built: [`SweepSpec`]) with the number of seeds per point and each point's hash.
//!
//! Run `index = point * seeds + seed_index` uses seed
//! [`seeds`](crate::engine::rng::seeds)`(base_seed, seeds).get(seed_index)`, where
//! `base_seed` is the scenario's `[scenario] seed`: the same seeds at every point
//! (common random numbers), so two strategies at one point see the same node launches
//! and service draws and differ only by what they do.

use crate::engine::rng::{self, Seeds};
use crate::output::shell_quote;
use crate::predicate::Predicate;
use crate::scenario::{
    Axis, Override, Scenario, ScenarioDocument, ScenarioErrors, Strategy, SweepSpec, MAX_RUNS,
    MAX_SEEDS,
};

/// One grid point: its values and its hash; [`scenario`](Point::scenario) builds the
/// validated scenario they give (held by no one between runs: flat memory).
#[derive(Debug, Clone)]
pub struct Point<'d> {
    /// Point index (0-based, in grid order).
    pub index: usize,
    /// The value label of each axis at this point.
    pub labels: &'d [String],
    /// The overrides that make this point, in grid order.
    pub overrides: &'d [Override],
    /// The document the point's overrides apply to.
    doc: &'d ScenarioDocument,
    /// Hash of the resolved document at this point (what `fleetsim run` with the same
    /// `--set`s prints).
    pub scenario_hash: String,
}

impl Point<'_> {
    /// The scenario at this point, built from the document and the point's overrides
    /// (validated when the document was loaded).
    pub fn scenario(&self) -> Scenario {
        self.doc
            .scenario_with(self.overrides)
            .expect("grid points are validated at load")
    }
}

/// Which run an index is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId {
    /// Run index: `point * seeds + seed_index`.
    pub index: u64,
    /// Grid point.
    pub point: usize,
    /// Seed number at this point (`0..seeds`).
    pub seed_index: u64,
    /// The master seed of the run.
    pub seed: u64,
}

/// A sweep of a loaded document, ready to run.
#[derive(Debug, Clone)]
pub struct Sweep<'d> {
    /// Scenario name.
    pub scenario_name: String,
    /// The scenario file as named by the caller.
    pub source: String,
    /// Hash of the resolved document (including `[sweep]` and `[strategies]`).
    pub scenario_hash: String,
    /// Seed of seed index 0 (the scenario's `[scenario] seed`).
    pub base_seed: u64,
    /// Seeds per point.
    pub seeds: u64,
    /// Grid keys in order.
    pub axes: &'d [Axis],
    /// The failure predicate.
    pub failure: &'d Predicate,
    /// The failure predicate as written.
    pub failure_text: String,
    /// The failure curve's x axis (a numeric axis), if there is one.
    pub x: Option<String>,
    /// The axes whose values name the curve's lines (every axis is x or in `group`).
    pub group: Vec<String>,
    /// The failure probability a recommendation may accept.
    pub max_failure_p: f64,
    /// The strategies of the document (all of them, not only those swept).
    pub strategies: &'d [Strategy],
    points: Vec<Point<'d>>,
}

impl<'d> Sweep<'d> {
    /// The sweep of the document's `[sweep]` section; `seeds` (from `--seeds`) replaces
    /// `[sweep] seeds`.
    pub fn from_document(
        doc: &'d ScenarioDocument,
        seeds: Option<u64>,
    ) -> Result<Sweep<'d>, ScenarioErrors> {
        let one =
            |path: &str, message: String| ScenarioErrors::new(vec![doc.error_at(path, message)]);
        let Some(spec) = doc.sweep() else {
            return Err(one(
                "sweep",
                "the scenario has no [sweep] section (see docs/sweep.md)".into(),
            ));
        };
        let seeds = seeds.unwrap_or(spec.seeds);
        if seeds == 0 || seeds > MAX_SEEDS {
            return Err(one(
                "sweep.seeds",
                format!("must be 1..={MAX_SEEDS}, got {seeds}"),
            ));
        }
        let n_points = spec.points.len() as u64;
        let runs = n_points.saturating_mul(seeds);
        if runs > MAX_RUNS {
            return Err(one(
                "sweep.seeds",
                format!("{n_points} points x {seeds} seeds = {runs} runs; at most {MAX_RUNS}"),
            ));
        }
        Sweep::new(doc, spec, seeds)
    }

    fn new(
        doc: &'d ScenarioDocument,
        spec: &'d SweepSpec,
        seeds: u64,
    ) -> Result<Sweep<'d>, ScenarioErrors> {
        let points = spec
            .points
            .iter()
            .map(|p| {
                Ok(Point {
                    index: p.index,
                    labels: &p.labels,
                    overrides: &p.overrides,
                    doc,
                    scenario_hash: doc.hash_with(&p.overrides)?,
                })
            })
            .collect::<Result<Vec<_>, ScenarioErrors>>()?;
        Ok(Sweep {
            scenario_name: doc.scenario.name.clone(),
            source: doc.source.clone(),
            scenario_hash: doc.hash.clone(),
            base_seed: doc.scenario.seed,
            seeds,
            axes: &spec.axes,
            failure: &spec.failure,
            failure_text: spec.failure_text.clone(),
            x: spec.x.clone(),
            group: spec.group.clone(),
            max_failure_p: spec.max_failure_p,
            strategies: doc.strategies(),
            points,
        })
    }

    /// The grid points, in index order.
    pub fn points(&self) -> &[Point<'d>] {
        &self.points
    }

    /// Runs in the whole sweep: points x seeds.
    pub fn runs(&self) -> u64 {
        self.points.len() as u64 * self.seeds
    }

    /// The seeds every point runs.
    pub fn seed_sequence(&self) -> Seeds {
        rng::seeds(self.base_seed, self.seeds)
    }

    /// Which point and seed run `index` is (`index < self.runs()`).
    pub fn run_id(&self, index: u64) -> RunId {
        let seed_index = index % self.seeds;
        RunId {
            index,
            point: (index / self.seeds) as usize,
            seed_index,
            seed: self.seed_sequence().get(seed_index),
        }
    }

    /// The command line that replays run `index` alone with `fleetsim run`.
    pub fn replay_command(&self, index: u64) -> String {
        let id = self.run_id(index);
        let mut cmd = format!(
            "fleetsim run {} --seed {}",
            shell_quote(&self.source),
            id.seed
        );
        for o in self.points[id.point].overrides {
            cmd.push_str(" --set ");
            cmd.push_str(&shell_quote(o.text()));
        }
        cmd
    }
}
