//! The validated `[strategies]`, `[sweep]` and `[expect]` sections: what the sweep, the
//! review and the checks run, checked at load against the scenario they belong to.
//!
//! - [`Strategy`]: a named bundle of overrides (`[strategies.<name>]`) that gives a valid
//!   scenario on its own.
//! - [`SweepSpec`]: the grid, each point already built and validated, the failure
//!   predicate, the curve's axes, the threshold.
//! - [`Expectations`]: the assertions of `fleetsim check`, their scopes resolved to
//!   cluster indices.
//!
//! The sections' syntax and every error they can give are in `docs/scenario.md`,
//! `docs/sweep.md` and `docs/check-and-report.md`.

use crate::predicate::{CompareOp, Predicate};

use super::overrides::Override;

/// Seeds per point when `[sweep] seeds` is absent.
pub const DEFAULT_SEEDS: u64 = 20;
/// Most seeds per sweep point.
pub const MAX_SEEDS: u64 = 1_000_000;
/// Most grid points (each is validated and kept in memory as a scenario).
pub const MAX_POINTS: u64 = 10_000;
/// Most runs in one sweep.
pub const MAX_RUNS: u64 = 1_000_000_000;
/// Most grid keys.
pub const MAX_AXES: usize = 16;
/// `max_failure_p` when absent: the failure probability a recommendation accepts.
pub const DEFAULT_MAX_FAILURE_P: f64 = 0.05;
/// The grid key whose values are strategy names (`[strategies.<name>]`).
pub const STRATEGY_KEY: &str = "strategy";
/// Keys of the `[sweep]` table.
pub const SWEEP_KEYS: &[&str] = &["seeds", "grid", "failure", "x", "group", "max_failure_p"];
/// Keys of the `[expect]` table.
pub const EXPECT_KEYS: &[&str] = &["seeds", "assert"];
/// Most strategies a document may define.
pub const MAX_STRATEGIES: usize = 1000;
/// Most runs one assertion may ask for (`[expect] seeds`, `over N seeds`).
pub const MAX_EXPECT_SEEDS: u32 = 10_000;

/// The three sections of a document, validated together at load.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sections {
    /// `[strategies]`, in declaration order (empty without the section).
    pub strategies: Vec<Strategy>,
    /// `[sweep]`, if present.
    pub sweep: Option<SweepSpec>,
    /// `[expect]`, if present.
    pub expect: Option<Expectations>,
}

/// A named rollout / restart strategy: the overrides that select it.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// Its name (`[strategies.<name>]`).
    pub name: String,
    /// Its overrides, in the order written (none: the scenario as written).
    pub overrides: Vec<Override>,
}

/// Finds a strategy by name.
pub fn find_strategy<'a>(list: &'a [Strategy], name: &str) -> Option<&'a Strategy> {
    list.iter().find(|s| s.name == name)
}

/// The `[sweep]` section, validated: every grid point's scenario is known to be valid.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// Seeds per point (`1..=MAX_SEEDS`).
    pub seeds: u64,
    /// Grid keys in order.
    pub axes: Vec<Axis>,
    /// The failure predicate over a run's fleet figures.
    pub failure: Predicate,
    /// The failure predicate as written.
    pub failure_text: String,
    /// The failure curve's x axis (a numeric axis), if there is one.
    pub x: Option<String>,
    /// The axes whose values name the curve's lines (every axis is x or in `group`).
    pub group: Vec<String>,
    /// The failure probability a recommendation may accept (`0..=1`).
    pub max_failure_p: f64,
    /// The grid points, in index order: the cartesian product of the axes in declaration
    /// order (the first key varies slowest).
    pub points: Vec<GridPoint>,
}

/// One grid key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The key: a canonical dotted scenario path, or [`STRATEGY_KEY`].
    pub path: String,
    /// Its values in order.
    pub values: Vec<toml::Value>,
    /// The values as written in CSV cells (strings bare, others as TOML).
    pub labels: Vec<String>,
}

impl Axis {
    /// Whether every value is a number (an x axis).
    pub fn is_numeric(&self) -> bool {
        self.values
            .iter()
            .all(|v| matches!(v, toml::Value::Integer(_) | toml::Value::Float(_)))
    }
}

/// One grid point: its values and the validated scenario they give.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPoint {
    /// Point index (0-based, in grid order).
    pub index: usize,
    /// The value label of each axis at this point.
    pub labels: Vec<String>,
    /// The overrides that make this point, in grid order (a strategy contributes its
    /// bundle; later keys win where paths repeat). The point's scenario was built and
    /// validated at load, then dropped: a sweep builds it again when the point runs, so
    /// its memory does not grow with points x clusters.
    pub overrides: Vec<Override>,
}

/// A value as written in a CSV cell: strings bare, anything else as TOML.
pub fn label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A scenario's validated `[expect]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectations {
    /// Default number of runs for an assertion without `over N seeds`.
    pub seeds: u32,
    /// The assertions, in file order.
    pub assertions: Vec<Assertion>,
}

impl Expectations {
    /// How many runs the widest assertion needs.
    pub fn runs(&self) -> u32 {
        self.assertions
            .iter()
            .map(|a| a.quantifier.seeds())
            .max()
            .unwrap_or(0)
    }
}

/// One assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// The text as written.
    pub text: String,
    /// Its field path in the document (`expect.assert[2]`).
    pub path: String,
    /// Which figures it looks at.
    pub scope: Scope,
    /// The predicate over one run's figures.
    pub predicate: Predicate,
    /// Every run, or a probability over the runs.
    pub quantifier: Quantifier,
}

/// Which figures of a run an assertion looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The fleet's figures.
    Fleet,
    /// Each of these clusters' figures.
    Clusters {
        /// The name as written (`payments`, `web`, `*`).
        name: String,
        /// Indices into the run's clusters, in cluster order (at least one).
        indices: Vec<usize>,
    },
}

/// How runs are combined into a verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantifier {
    /// The predicate holds in each of `seeds` runs.
    Every {
        /// Number of runs.
        seeds: u32,
    },
    /// The fraction of `seeds` runs in which the predicate holds satisfies `op bound`.
    Probability {
        /// Comparison.
        op: CompareOp,
        /// Right-hand side, in [0, 1].
        bound: f64,
        /// Number of runs.
        seeds: u32,
    },
}

impl Quantifier {
    /// Number of runs it needs.
    pub fn seeds(&self) -> u32 {
        match *self {
            Quantifier::Every { seeds } | Quantifier::Probability { seeds, .. } => seeds,
        }
    }
}
