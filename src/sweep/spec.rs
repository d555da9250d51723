//! The `[sweep]` section -> a validated [`Sweep`]: grid points, seeds, the failure
//! predicate and how the failure curve is drawn.
//!
//! ```toml
//! [sweep]
//! seeds = 20
//! failure = "peak_crashloop_pods > 0 or time_to_recover_s > 1h"
//! x = "ca.pca-payments.workers"     # default: the first numeric grid key
//! group = "strategy"                # default: every other grid key
//! max_failure_p = 0.05
//!
//! [sweep.grid]
//! strategy = ["all-at-once", "batches", "istiod-window"]
//! "ca.pca-payments.workers" = [2, 4, 8, 16]
//! ```
//!
//! Points are the cartesian product of the grid in declaration order (the first key
//! varies slowest). Run `index = point * seeds + seed_index` uses seed
//! `base_seed + seed_index`, where `base_seed` is the scenario's `[scenario] seed`: the
//! same seeds at every point (common random numbers), so two strategies at one point see
//! the same node launches and service draws and differ only by what they do.

use crate::keypath::join as join_key;
use crate::metrics::FIGURES;
use crate::output::shell_quote;
use crate::predicate::Predicate;
use crate::scenario::{Override, Scenario, ScenarioDocument};

use super::error::{SpecError, SpecErrors};
use super::strategy::{self, Strategy};

/// Seeds per point when `[sweep] seeds` is absent.
pub const DEFAULT_SEEDS: u64 = 20;
/// Most seeds per point.
pub const MAX_SEEDS: u64 = 1_000_000;
/// Most grid points (each is validated and kept in memory as a scenario).
pub const MAX_POINTS: u64 = 10_000;
/// Most runs in one sweep.
pub const MAX_RUNS: u64 = 1_000_000_000;
/// Most grid keys.
pub const MAX_AXES: usize = 16;
/// `max_failure_p` when absent: the failure probability the report accepts.
pub const DEFAULT_MAX_FAILURE_P: f64 = 0.05;
/// The grid key whose values are strategy names (`[strategies.<name>]`).
pub const STRATEGY_KEY: &str = "strategy";

const SECTION_KEYS: &[&str] = &["seeds", "grid", "failure", "x", "group", "max_failure_p"];

/// A sweep as written, before it is checked against the scenario. Build one in code to
/// sweep without a `[sweep]` section (e.g. strategies over seeds for a report).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// Seeds per point (`1..=MAX_SEEDS`).
    pub seeds: u64,
    /// Grid keys in order: a dotted scenario path, or [`STRATEGY_KEY`] with strategy
    /// names, and the values to take.
    pub grid: Vec<(String, Vec<toml::Value>)>,
    /// The failure predicate over a run's fleet figures.
    pub failure: String,
    /// The failure curve's x axis (a numeric grid key); `None`: the first numeric key.
    pub x: Option<String>,
    /// Grid keys whose values name the curve's lines; `None`: every key but x.
    pub group: Option<Vec<String>>,
    /// The failure probability a recommendation may accept (`0..=1`).
    pub max_failure_p: f64,
}

impl SweepSpec {
    /// A spec with one grid key: `strategy` over `names` (the report's comparison).
    pub fn strategies(names: &[&str], seeds: u64, failure: &str) -> SweepSpec {
        SweepSpec {
            seeds,
            grid: vec![(
                STRATEGY_KEY.to_string(),
                names.iter().map(|n| toml::Value::from(*n)).collect(),
            )],
            failure: failure.to_string(),
            x: None,
            group: None,
            max_failure_p: DEFAULT_MAX_FAILURE_P,
        }
    }

    /// Reads the document's `[sweep]` section. Only its shape is checked here (types,
    /// unknown keys); [`Sweep::new`] checks it against the scenario.
    pub fn from_document(doc: &ScenarioDocument) -> Result<SweepSpec, SpecErrors> {
        let file = &doc.source;
        let e = |path: &str, message: String| SpecError {
            file: file.clone(),
            line: doc.line_of(path),
            path: path.to_string(),
            message,
        };
        let Some(section) = &doc.sweep else {
            return Err(SpecErrors::one(SpecError {
                file: file.clone(),
                line: None,
                path: "sweep".into(),
                message: "the scenario has no [sweep] section (see docs/sweep.md)".into(),
            }));
        };
        let mut errors = Vec::new();
        for key in section.keys() {
            if !SECTION_KEYS.contains(&key.as_str()) {
                errors.push(e(
                    &join_key("sweep", key),
                    format!(
                        "unknown key {key:?}; expected one of: {}",
                        SECTION_KEYS.join(", ")
                    ),
                ));
            }
        }
        let seeds = match section.get("seeds") {
            None => DEFAULT_SEEDS,
            Some(toml::Value::Integer(n)) if *n >= 1 && (*n as u64) <= MAX_SEEDS => *n as u64,
            Some(v) => {
                errors.push(e(
                    "sweep.seeds",
                    format!("expected an integer 1..={MAX_SEEDS}, got {v}"),
                ));
                DEFAULT_SEEDS
            }
        };
        let mut grid = Vec::new();
        match section.get("grid") {
            None => errors.push(e(
                "sweep",
                "missing `grid`: a table of dotted scenario paths to arrays of values, \
                 e.g. [sweep.grid] \"ca.pca.workers\" = [4, 8, 16]"
                    .into(),
            )),
            Some(toml::Value::Table(t)) => {
                let mut leaves = Vec::new();
                strategy::flatten(t, "", "sweep.grid", &mut leaves);
                for (path, value, file_key) in leaves {
                    match value {
                        toml::Value::Array(values) => grid.push((path, values)),
                        v => errors.push(e(
                            &file_key,
                            format!(
                                "expected an array of values to sweep, got {} {v}",
                                v.type_str()
                            ),
                        )),
                    }
                }
            }
            Some(v) => errors.push(e(
                "sweep.grid",
                format!("expected a table [sweep.grid], got {} {v}", v.type_str()),
            )),
        }
        let failure = match section.get("failure") {
            Some(toml::Value::String(s)) => s.clone(),
            None => {
                errors.push(e(
                    "sweep",
                    "missing `failure`: the predicate that makes a run count as failed, \
                     e.g. failure = \"peak_crashloop_pods > 0 or time_to_recover_s > 1h\""
                        .into(),
                ));
                String::new()
            }
            Some(v) => {
                errors.push(e(
                    "sweep.failure",
                    format!("expected a predicate string, got {} {v}", v.type_str()),
                ));
                String::new()
            }
        };
        let x = match section.get("x") {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(v) => {
                errors.push(e(
                    "sweep.x",
                    format!("expected a grid key (string), got {} {v}", v.type_str()),
                ));
                None
            }
        };
        let group = match section.get("group") {
            None => None,
            Some(toml::Value::String(s)) if s.is_empty() => Some(Vec::new()),
            Some(toml::Value::String(s)) => Some(vec![s.clone()]),
            Some(toml::Value::Array(items)) => {
                let mut keys = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => keys.push(s.clone()),
                        v => errors.push(e(
                            "sweep.group",
                            format!("expected grid keys (strings), got {} {v}", v.type_str()),
                        )),
                    }
                }
                Some(keys)
            }
            Some(v) => {
                errors.push(e(
                    "sweep.group",
                    format!(
                        "expected a grid key or an array of them, got {} {v}",
                        v.type_str()
                    ),
                ));
                None
            }
        };
        let max_failure_p = match section.get("max_failure_p") {
            None => DEFAULT_MAX_FAILURE_P,
            Some(toml::Value::Float(p)) => *p,
            Some(toml::Value::Integer(p)) => *p as f64,
            Some(v) => {
                errors.push(e(
                    "sweep.max_failure_p",
                    format!("expected a probability 0..=1, got {} {v}", v.type_str()),
                ));
                DEFAULT_MAX_FAILURE_P
            }
        };
        if errors.is_empty() {
            Ok(SweepSpec {
                seeds,
                grid,
                failure,
                x,
                group,
                max_failure_p,
            })
        } else {
            Err(SpecErrors(errors))
        }
    }
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
#[derive(Debug, Clone)]
pub struct Point {
    /// Point index (0-based, in grid order).
    pub index: usize,
    /// The value label of each axis at this point.
    pub labels: Vec<String>,
    /// The overrides that make this point, in grid order (a strategy contributes its
    /// bundle; later keys win where paths repeat).
    pub overrides: Vec<Override>,
    /// The scenario at this point.
    pub scenario: Scenario,
    /// Hash of the resolved document at this point (what `fleetsim run` with the same
    /// `--set`s prints).
    pub scenario_hash: String,
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
    /// The master seed: `base_seed + seed_index`.
    pub seed: u64,
}

/// A validated sweep: every point's scenario is known to be valid before any run starts.
#[derive(Debug, Clone)]
pub struct Sweep {
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
    pub axes: Vec<Axis>,
    /// The failure predicate.
    pub failure: Predicate,
    /// The failure predicate as written.
    pub failure_text: String,
    /// The failure curve's x axis (a numeric axis), if there is one.
    pub x: Option<String>,
    /// The axes whose values name the curve's lines (every axis is x or in `group`).
    pub group: Vec<String>,
    /// The failure probability a recommendation may accept.
    pub max_failure_p: f64,
    /// The strategies of the document (all of them, not only those swept).
    pub strategies: Vec<Strategy>,
    points: Vec<Point>,
}

impl Sweep {
    /// The sweep of the document's `[sweep]` section; `seeds` (from `--seeds`) replaces
    /// `[sweep] seeds`.
    pub fn from_document(doc: &ScenarioDocument, seeds: Option<u64>) -> Result<Sweep, SpecErrors> {
        let mut spec = SweepSpec::from_document(doc)?;
        if let Some(n) = seeds {
            spec.seeds = n;
        }
        Sweep::new(doc, spec)
    }

    /// Checks `spec` against `doc` and builds every point: unknown paths, values of the
    /// wrong type or out of range, unknown strategies, a predicate that does not parse,
    /// and points the scenario rejects are all reported here, before anything runs.
    pub fn new(doc: &ScenarioDocument, spec: SweepSpec) -> Result<Sweep, SpecErrors> {
        let file = doc.source.clone();
        let mut errors = Vec::new();
        let err = |path: &str, message: String| SpecError {
            file: file.clone(),
            line: doc.line_of(path),
            path: path.to_string(),
            message,
        };
        if spec.seeds == 0 || spec.seeds > MAX_SEEDS {
            errors.push(err(
                "sweep.seeds",
                format!("must be 1..={MAX_SEEDS}, got {}", spec.seeds),
            ));
        }
        if spec.grid.is_empty() {
            errors.push(err(
                "sweep.grid",
                "empty grid: give at least one dotted scenario path with an array of values".into(),
            ));
        }
        if spec.grid.len() > MAX_AXES {
            errors.push(err(
                "sweep.grid",
                format!("{} keys; at most {MAX_AXES}", spec.grid.len()),
            ));
        }
        if !(0.0..=1.0).contains(&spec.max_failure_p) {
            errors.push(err(
                "sweep.max_failure_p",
                format!("must be a probability 0..=1, got {}", spec.max_failure_p),
            ));
        }
        let failure = match Predicate::parse(&spec.failure, &FIGURES) {
            Ok(p) => Some(p),
            Err(why) => {
                errors.push(err(
                    "sweep.failure",
                    format!("predicate {:?} does not parse: {why}", spec.failure),
                ));
                None
            }
        };
        let strategies = match strategy::strategies(doc) {
            Ok(s) => s,
            Err(e) => {
                errors.extend(e.0);
                Vec::new()
            }
        };

        // Each axis alone.
        let mut axes: Vec<Axis> = Vec::new();
        for (key, values) in &spec.grid {
            let key_path = join_key("sweep.grid", key);
            let e = |message: String| SpecError {
                file: file.clone(),
                line: doc.line_of(&key_path),
                path: key_path.clone(),
                message,
            };
            if values.is_empty() {
                errors.push(e("no values: give at least one".into()));
                continue;
            }
            let path = if key == STRATEGY_KEY {
                key.clone()
            } else {
                match Override::new(key, values[0].clone()) {
                    Ok(o) => o.path(),
                    Err(x) => {
                        errors.push(e(x.reason));
                        continue;
                    }
                }
            };
            if axes.iter().any(|a| a.path == path) {
                errors.push(e(format!("{path} is swept twice")));
                continue;
            }
            let labels: Vec<String> = values.iter().map(label).collect();
            if let Some((i, l)) = labels
                .iter()
                .enumerate()
                .find(|(i, l)| labels[..*i].contains(l))
            {
                errors.push(e(format!("value {l} is listed twice (at {i})")));
                continue;
            }
            let mut axis_errors: Vec<String> = Vec::new();
            for v in values {
                if key == STRATEGY_KEY {
                    match v {
                        toml::Value::String(name) => {
                            if !errors
                                .iter()
                                .any(|x: &SpecError| x.path.starts_with("strategies"))
                                && strategy::find(&strategies, name).is_none()
                            {
                                let known: Vec<&str> =
                                    strategies.iter().map(|s| s.name.as_str()).collect();
                                axis_errors.push(if known.is_empty() {
                                    format!(
                                        "unknown strategy {name:?}: the scenario has no [strategies] section"
                                    )
                                } else {
                                    format!(
                                        "unknown strategy {name:?}; defined: {}",
                                        known.join(", ")
                                    )
                                });
                            }
                        }
                        v => axis_errors.push(format!(
                            "expected strategy names (strings), got {} {v}",
                            v.type_str()
                        )),
                    }
                    continue;
                }
                let ov = match Override::new(key, v.clone()) {
                    Ok(o) => o,
                    Err(x) => {
                        axis_errors.push(x.reason);
                        continue;
                    }
                };
                if let Err(es) = doc.scenario_with(std::slice::from_ref(&ov)) {
                    for se in es.iter() {
                        let m = if se.path.is_empty() {
                            format!("value {}: {}", label(v), se.message)
                        } else {
                            format!("value {}: {}: {}", label(v), se.path, se.message)
                        };
                        // An unknown path is the same for every value: say it once.
                        let m = if se.kind == crate::scenario::ErrorKind::Override {
                            format!("{}: {}", se.path, se.message)
                        } else {
                            m
                        };
                        if !axis_errors.contains(&m) {
                            axis_errors.push(m);
                        }
                    }
                }
            }
            errors.extend(axis_errors.into_iter().map(&e));
            axes.push(Axis {
                path,
                values: values.clone(),
                labels,
            });
        }

        // The curve's axes.
        let canonical = |k: &str| -> String {
            if k == STRATEGY_KEY {
                return k.to_string();
            }
            Override::new(k, toml::Value::Boolean(true))
                .map(|o| o.path())
                .unwrap_or_else(|_| k.to_string())
        };
        let x = match &spec.x {
            Some(k) => {
                let k = canonical(k);
                match axes.iter().find(|a| a.path == k) {
                    Some(a) if a.is_numeric() => Some(k),
                    Some(_) => {
                        errors.push(err(
                            "sweep.x",
                            format!("{k}: the x axis needs numeric values"),
                        ));
                        None
                    }
                    None => {
                        errors.push(err(
                            "sweep.x",
                            format!("{k:?} is not a grid key; grid keys: {}", axis_list(&axes)),
                        ));
                        None
                    }
                }
            }
            None => axes.iter().find(|a| a.is_numeric()).map(|a| a.path.clone()),
        };
        let group: Vec<String> = match &spec.group {
            Some(keys) => {
                let mut out = Vec::new();
                for k in keys {
                    let k = canonical(k);
                    if !axes.iter().any(|a| a.path == k) {
                        errors.push(err(
                            "sweep.group",
                            format!("{k:?} is not a grid key; grid keys: {}", axis_list(&axes)),
                        ));
                    } else if Some(&k) == x.as_ref() {
                        errors.push(err(
                            "sweep.group",
                            format!("{k} is the x axis; a line cannot be grouped by it"),
                        ));
                    } else if !out.contains(&k) {
                        out.push(k);
                    }
                }
                out
            }
            None => axes
                .iter()
                .map(|a| a.path.clone())
                .filter(|p| Some(p) != x.as_ref())
                .collect(),
        };
        if x.is_some() {
            for a in &axes {
                if Some(&a.path) != x.as_ref() && !group.contains(&a.path) {
                    errors.push(err(
                        "sweep.group",
                        format!(
                            "grid key {} is neither x nor in group: one line would have several \
                             points at the same x; add it to group",
                            a.path
                        ),
                    ));
                }
            }
        }

        if !errors.is_empty() {
            return Err(SpecErrors(errors));
        }
        let n_points = axes
            .iter()
            .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
            .filter(|&n| n <= MAX_POINTS);
        let Some(n_points) = n_points else {
            return Err(SpecErrors::one(err(
                "sweep.grid",
                format!(
                    "the grid has {} points; at most {MAX_POINTS}",
                    axes.iter()
                        .map(|a| a.values.len().to_string())
                        .collect::<Vec<_>>()
                        .join(" x ")
                ),
            )));
        };
        let runs = n_points.saturating_mul(spec.seeds);
        if runs > MAX_RUNS {
            return Err(SpecErrors::one(err(
                "sweep.seeds",
                format!(
                    "{n_points} points x {} seeds = {runs} runs; at most {MAX_RUNS}",
                    spec.seeds
                ),
            )));
        }
        let base_seed = doc.scenario.seed;
        if base_seed.checked_add(spec.seeds - 1).is_none() {
            return Err(SpecErrors::one(err(
                "scenario.seed",
                format!(
                    "seed {base_seed} + {} seeds overflows a 64-bit seed",
                    spec.seeds
                ),
            )));
        }

        // Every point, validated.
        let mut points = Vec::with_capacity(n_points as usize);
        let mut bad_points = 0usize;
        for p in 0..n_points as usize {
            let mut rest = p;
            let mut picks = vec![0usize; axes.len()];
            for (i, a) in axes.iter().enumerate().rev() {
                picks[i] = rest % a.values.len();
                rest /= a.values.len();
            }
            let mut overrides = Vec::new();
            let mut labels = Vec::new();
            for (a, &k) in axes.iter().zip(&picks) {
                labels.push(a.labels[k].clone());
                if a.path == STRATEGY_KEY {
                    let s = strategy::find(&strategies, &a.labels[k]).expect("checked above");
                    overrides.extend(s.overrides.iter().cloned());
                } else {
                    overrides
                        .push(Override::new(&a.path, a.values[k].clone()).expect("checked above"));
                }
            }
            match doc.with_overrides(&overrides) {
                Ok(d) => points.push(Point {
                    index: p,
                    labels,
                    overrides,
                    scenario: d.scenario,
                    scenario_hash: d.hash,
                }),
                Err(es) => {
                    bad_points += 1;
                    if bad_points <= 5 {
                        let at: Vec<String> = axes
                            .iter()
                            .zip(&labels)
                            .map(|(a, l)| format!("{}={l}", a.path))
                            .collect();
                        for se in es.iter() {
                            errors.push(err(
                                "sweep.grid",
                                format!(
                                    "point {p} ({}): {}: {}",
                                    at.join(", "),
                                    se.path,
                                    se.message
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if bad_points > 5 {
            errors.push(err(
                "sweep.grid",
                format!("{} more points are invalid", bad_points - 5),
            ));
        }
        if !errors.is_empty() {
            return Err(SpecErrors(errors));
        }
        Ok(Sweep {
            scenario_name: doc.scenario.name.clone(),
            source: doc.source.clone(),
            scenario_hash: doc.hash.clone(),
            base_seed,
            seeds: spec.seeds,
            axes,
            failure: failure.expect("checked above"),
            failure_text: spec.failure,
            x,
            group,
            max_failure_p: spec.max_failure_p,
            strategies,
            points,
        })
    }

    /// The grid points, in index order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Runs in the whole sweep: points x seeds.
    pub fn runs(&self) -> u64 {
        self.points.len() as u64 * self.seeds
    }

    /// Which point and seed run `index` is (`index < self.runs()`).
    pub fn run_id(&self, index: u64) -> RunId {
        let seed_index = index % self.seeds;
        RunId {
            index,
            point: (index / self.seeds) as usize,
            seed_index,
            seed: self.base_seed + seed_index,
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
        for o in &self.points[id.point].overrides {
            cmd.push_str(" --set ");
            cmd.push_str(&shell_quote(o.text()));
        }
        cmd
    }
}

fn axis_list(axes: &[Axis]) -> String {
    axes.iter()
        .map(|a| a.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as written in a CSV cell: strings bare, anything else as TOML.
pub fn label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Names of strategies: 1-100 letters, digits, `-` or `_`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
