//! Calibration: the scenario parameter values whose simulated time series come closest
//! to observed ones (`fleetsim calibrate`).
//!
//! # Layer
//! Beside the [`sweep`](crate::sweep) layer: it runs a scenario many times in parallel
//! (`model::run`, rayon) with `--set`-style overrides ([`Override`]) applied to a loaded
//! document, and judges each run with [`observed::compare`](crate::observed::compare).
//! It reads no files; the command line hands it a loaded document and paired observed
//! series.
//!
//! # Objective
//! The mean over the paired series of their normalised RMSE
//! ([`compare::objective`]): RMSE over the observed
//! range, so series of different sizes weigh alike and zeros are fine.
//!
//! # Search (deterministic)
//! Each `--param PATH=LO..HI` is an integer, a number or a duration range (from how LO
//! and HI are written). Values are quantised before they run: integers rounded, numbers
//! and durations to 6 significant digits (durations also to whole nanoseconds), so the
//! printed `--set` reproduces the evaluated run exactly.
//! 1. **Grid**: `g` evenly spaced values per parameter over `[LO, HI]` (`g` = 9, 7, 5, 4
//!    for 1, 2, 3, 4 parameters), every combination.
//! 2. **Refinement rounds** from the [`STARTS`] best grid points (several, because a
//!    stochastic objective has local minima and parameters can trade off along a ridge,
//!    such as `workers` against `service_mean`): around each start, each parameter in
//!    turn is polled at `centre ± step · k / 4` (`k = 1..4`) with the others at the
//!    centre, all polls of all starts at once; each start then moves to the best of its
//!    polls if it improves, and every step shrinks by 4. Rounds stop when each step is
//!    below 1/1000 of its range (an integer's below 1), or after [`MAX_ROUNDS`]. The
//!    answer is the best point evaluated.
//!
//! Every point is a pure run of the scenario with the same seed (common random numbers),
//! evaluated once (results are cached by value). A round's points run in parallel and
//! come back in their generation order, and the best is the lowest objective, ties to
//! the earliest evaluated: the same inputs give the same answer with any thread count.

use std::collections::BTreeMap;
use std::fmt;

use rayon::prelude::*;

use crate::duration::parse_duration;
use crate::engine::SimTime;
use crate::model;
use crate::numfmt::{duration_decimal, round_sig, sig};
use crate::observed::compare::{self, Pairing, SeriesError};
use crate::observed::timeseries;
use crate::scenario::{Override, ScenarioDocument};

/// Most parameters searched at once.
pub const MAX_PARAMS: usize = 4;
/// Most refinement rounds after the grid.
pub const MAX_ROUNDS: u32 = 12;
/// A float or duration parameter is resolved when its step is below this fraction of
/// its range.
pub const TOLERANCE: f64 = 1e-3;
/// Refinements run from this many of the best grid points.
pub const STARTS: usize = 3;
/// Significant digits values are quantised to.
pub const DIGITS: usize = 6;

/// What a parameter's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Whole numbers (`workers=2..32`).
    Integer,
    /// Numbers (`contention_sigma=0..0.1`).
    Float,
    /// Durations (`service_mean=50ms..400ms`), as nanoseconds.
    Duration,
}

/// `--param PATH=LO..HI`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRange {
    /// The dotted scenario path.
    pub path: String,
    /// Lower end (nanoseconds for durations).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// What the values are.
    pub kind: Kind,
    /// The argument as given.
    pub text: String,
}

impl std::str::FromStr for ParamRange {
    type Err = String;
    /// `PATH=LO..HI`: LO and HI both integers, both numbers, or both durations.
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((path, range)) = s.rsplit_once('=') else {
            return Err(format!(
                "expected PATH=LO..HI (e.g. ca.pca.service_mean=50ms..400ms), got {s:?}"
            ));
        };
        let path = path.trim();
        let Some((lo, hi)) = range.split_once("..") else {
            return Err(format!("expected a range LO..HI after '=', got {range:?}"));
        };
        let (lo, hi) = (lo.trim(), hi.trim());
        let (kind, a, b) = if let (Ok(a), Ok(b)) = (lo.parse::<i64>(), hi.parse::<i64>()) {
            (Kind::Integer, a as f64, b as f64)
        } else if let (Ok(a), Ok(b)) = (lo.parse::<f64>(), hi.parse::<f64>()) {
            if !(a.is_finite() && b.is_finite()) {
                return Err(format!(
                    "LO and HI must be finite numbers, got {lo:?}..{hi:?}"
                ));
            }
            (Kind::Float, a, b)
        } else if let (Ok(a), Ok(b)) = (parse_duration(lo), parse_duration(hi)) {
            (Kind::Duration, a.as_nanos() as f64, b.as_nanos() as f64)
        } else {
            return Err(format!(
                "LO and HI must both be integers, numbers or durations (e.g. 2..32, 0..0.1, 50ms..400ms), got {lo:?}..{hi:?}"
            ));
        };
        if a > b {
            return Err(format!("range {lo}..{hi} is empty: LO > HI"));
        }
        Ok(ParamRange {
            path: path.to_string(),
            lo: a,
            hi: b,
            kind,
            text: s.to_string(),
        })
    }
}

impl ParamRange {
    /// `v` quantised as the search runs it.
    pub fn quantise(&self, v: f64) -> f64 {
        let v = v.clamp(self.lo, self.hi);
        match self.kind {
            Kind::Integer => v.round(),
            Kind::Float => round_sig(v, DIGITS),
            Kind::Duration => round_sig(v, DIGITS).round().max(0.0),
        }
    }

    /// The value as `--set` writes it (`150.2ms`, `0.0123`, `8`).
    pub fn format(&self, v: f64) -> String {
        match self.kind {
            Kind::Integer => format!("{}", v as i64),
            Kind::Float => {
                let s = sig(v, DIGITS);
                if s.contains(['.', 'e', 'E']) {
                    s
                } else {
                    format!("{s}.0")
                }
            }
            Kind::Duration => duration_decimal(SimTime(v as u64)),
        }
    }

    /// The value as a TOML value for the override.
    fn toml(&self, v: f64) -> toml::Value {
        match self.kind {
            Kind::Integer => toml::Value::Integer(v as i64),
            Kind::Float => toml::Value::Float(self.format(v).parse().unwrap_or(v)),
            Kind::Duration => toml::Value::String(self.format(v)),
        }
    }

    /// The override setting this parameter to `v`.
    pub fn override_for(&self, v: f64) -> Result<Override, CalibrateError> {
        Override::new(&self.path, self.toml(v)).map_err(|e| CalibrateError::Param {
            text: self.text.clone(),
            message: e.reason,
        })
    }

    /// `PATH=VALUE` for `--set`.
    pub fn set_text(&self, v: f64) -> String {
        format!("{}={}", self.path, self.format(v))
    }

    fn resolved(&self, step: f64) -> bool {
        match self.kind {
            Kind::Integer => step < 1.0,
            _ => step <= TOLERANCE * (self.hi - self.lo),
        }
    }
}

/// Why a calibration cannot run. Not fatal to the library: the command line exits 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    /// A `--param` that is malformed or names no scenario value.
    #[error("--param {text}: {message}")]
    Param {
        /// The argument as given.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// `--cluster` names no cluster of the scenario.
    #[error("--cluster {0}: {1}")]
    Cluster(String, String),
    /// No parameter, or too many.
    #[error("{0}")]
    Usage(String),
    /// No evaluated point gave a usable comparison.
    #[error("no parameter value could be compared with the observed data: {0}")]
    NothingCompared(String),
}

/// One evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Parameter values, quantised, in `--param` order.
    pub values: Vec<f64>,
    /// The objective (mean NRMSE); `+inf` when the point could not be compared.
    pub objective: f64,
    /// The per-series errors (empty when it could not be compared).
    pub series: Vec<SeriesError>,
    /// Why it could not be compared, if it could not.
    pub failure: Option<String>,
    /// The search round that evaluated it (0: the grid).
    pub round: u32,
}

/// The result of a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The best point.
    pub best: Evaluation,
    /// Every evaluation in the order it was made.
    pub evaluations: Vec<Evaluation>,
    /// Refinement rounds run after the grid.
    pub rounds: u32,
    /// Grid points per parameter.
    pub grid: usize,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Integer => "integer",
            Kind::Float => "number",
            Kind::Duration => "duration",
        })
    }
}

/// What a calibration compares against and how it runs.
pub struct Calibration<'a> {
    /// The loaded scenario (with its own `--set` overrides).
    pub doc: &'a ScenarioDocument,
    /// The parameters searched.
    pub params: &'a [ParamRange],
    /// Observed series paired with simulated columns (relative times).
    pub pairs: &'a [Pairing],
    /// The cluster whose rows are compared (`*`: the fleet).
    pub cluster: &'a str,
    /// The seed of every run.
    pub seed: u64,
}

/// Grid points per parameter for `d` parameters.
pub fn grid_points(d: usize) -> usize {
    match d {
        0 | 1 => 9,
        2 => 7,
        3 => 5,
        _ => 4,
    }
}

impl Calibration<'_> {
    /// Checks the parameters and the cluster before anything runs: each path must accept
    /// its LO and HI (the scenario validates with each), the cluster must exist.
    pub fn check(&self) -> Result<(), CalibrateError> {
        if self.params.is_empty() {
            return Err(CalibrateError::Usage(
                "calibrate needs at least one --param PATH=LO..HI".into(),
            ));
        }
        if self.params.len() > MAX_PARAMS {
            return Err(CalibrateError::Usage(format!(
                "at most {MAX_PARAMS} --param at once, got {}",
                self.params.len()
            )));
        }
        for (i, p) in self.params.iter().enumerate() {
            if self.params[..i].iter().any(|q| q.path == p.path) {
                return Err(CalibrateError::Param {
                    text: p.text.clone(),
                    message: format!("{} is already searched", p.path),
                });
            }
            for v in [p.lo, p.hi] {
                let ov = p.override_for(p.quantise(v))?;
                if let Err(e) = self.doc.scenario_with(&[ov]) {
                    return Err(CalibrateError::Param {
                        text: p.text.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        check_cluster(self.doc, self.cluster)
    }

    /// Runs the scenario at `values` and compares it with the observed series.
    pub fn evaluate(&self, values: &[f64], round: u32) -> Evaluation {
        let failed = |m: String| Evaluation {
            values: values.to_vec(),
            objective: f64::INFINITY,
            series: Vec::new(),
            failure: Some(m),
            round,
        };
        let overrides: Result<Vec<Override>, _> = self
            .params
            .iter()
            .zip(values)
            .map(|(p, &v)| p.override_for(v))
            .collect();
        let overrides = match overrides {
            Ok(o) => o,
            Err(e) => return failed(e.to_string()),
        };
        let sc = match self.doc.scenario_with(&overrides) {
            Ok(sc) => sc,
            Err(e) => return failed(e.to_string()),
        };
        let run = model::run(&sc, self.seed, &self.doc.hash);
        let csv = run.recorder.to_csv(&run.cluster_names);
        let sim = match timeseries::parse("simulated", &csv, self.cluster) {
            Ok(s) => s,
            Err(e) => return failed(e.to_string()),
        };
        match compare::compare_all("simulated", &sim, self.pairs) {
            Ok(series) => Evaluation {
                values: values.to_vec(),
                objective: compare::objective(&series),
                series,
                failure: None,
                round,
            },
            Err(e) => failed(e.to_string()),
        }
    }

    /// Searches the parameter ranges (module docs) on `pool`.
    pub fn run(&self, pool: &rayon::ThreadPool) -> Result<Outcome, CalibrateError> {
        self.check()?;
        let d = self.params.len();
        let g = grid_points(d);
        let mut evaluations: Vec<Evaluation> = Vec::new();
        let mut seen: BTreeMap<Vec<u64>, usize> = BTreeMap::new();
        let key = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();

        // Round 0: the grid.
        let axes: Vec<Vec<f64>> = self
            .params
            .iter()
            .map(|p| {
                let mut v: Vec<f64> = (0..g)
                    .map(|k| p.quantise(p.lo + (p.hi - p.lo) * k as f64 / (g - 1) as f64))
                    .collect();
                v.dedup();
                v
            })
            .collect();
        let mut grid: Vec<Vec<f64>> = vec![Vec::new()];
        for axis in &axes {
            grid = grid
                .into_iter()
                .flat_map(|prefix| {
                    axis.iter().map(move |&x| {
                        let mut p = prefix.clone();
                        p.push(x);
                        p
                    })
                })
                .collect();
        }
        let mut steps: Vec<f64> = self
            .params
            .iter()
            .map(|p| (p.hi - p.lo) / (g - 1) as f64)
            .collect();
        let mut polled: Vec<Vec<Vec<f64>>> = Vec::new();
        let mut batch = grid;
        let mut round = 0u32;
        // Indices (into `evaluations`) of the points each refinement starts from.
        let mut centres: Vec<usize> = Vec::new();
        loop {
            batch.retain(|v| !seen.contains_key(&key(v)));
            let results: Vec<Evaluation> =
                pool.install(|| batch.par_iter().map(|v| self.evaluate(v, round)).collect());
            for e in results {
                if seen.insert(key(&e.values), evaluations.len()).is_none() {
                    evaluations.push(e);
                }
            }
            if round == 0 {
                // The best STARTS grid points, ties to the earliest.
                let mut order: Vec<usize> = (0..evaluations.len())
                    .filter(|&i| evaluations[i].objective.is_finite())
                    .collect();
                order.sort_by(|&a, &b| {
                    evaluations[a]
                        .objective
                        .total_cmp(&evaluations[b].objective)
                        .then(a.cmp(&b))
                });
                centres = order.into_iter().take(STARTS).collect();
                if centres.is_empty() {
                    return Err(nothing(&evaluations));
                }
            } else {
                // Each start moves to the best of its own polls (or stays).
                for (c, polls) in centres.iter_mut().zip(&polled) {
                    for v in polls {
                        let i = seen[&key(v)];
                        if evaluations[i].objective < evaluations[*c].objective {
                            *c = i;
                        }
                    }
                }
            }
            if round >= MAX_ROUNDS
                || self
                    .params
                    .iter()
                    .zip(&steps)
                    .all(|(p, &s)| p.resolved(s) || p.hi == p.lo)
            {
                break;
            }
            round += 1;
            polled = centres
                .iter()
                .map(|&c| {
                    let centre = &evaluations[c].values;
                    let mut polls: Vec<Vec<f64>> = Vec::new();
                    for (i, p) in self.params.iter().enumerate() {
                        for k in [-4i32, -3, -2, -1, 1, 2, 3, 4] {
                            let mut v = centre.clone();
                            v[i] = p.quantise(centre[i] + steps[i] * k as f64 / 4.0);
                            if v != *centre && !polls.contains(&v) {
                                polls.push(v);
                            }
                        }
                    }
                    polls
                })
                .collect();
            batch = Vec::new();
            for v in polled.iter().flatten() {
                if !batch.contains(v) {
                    batch.push(v.clone());
                }
            }
            for s in &mut steps {
                *s /= 4.0;
            }
        }
        let best = best_index(&evaluations).ok_or_else(|| nothing(&evaluations))?;
        if !evaluations[best].objective.is_finite() {
            return Err(nothing(&evaluations));
        }
        Ok(Outcome {
            best: evaluations[best].clone(),
            evaluations,
            rounds: round,
            grid: g,
        })
    }
}

/// Checks that `cluster` is `*` (the fleet) or a cluster of the scenario.
pub fn check_cluster(doc: &ScenarioDocument, cluster: &str) -> Result<(), CalibrateError> {
    let sc = &doc.scenario;
    if cluster == timeseries::FLEET || sc.clusters.iter().any(|c| c.name == cluster) {
        return Ok(());
    }
    let names: Vec<&str> = sc.clusters.iter().map(|c| c.name.as_str()).collect();
    Err(CalibrateError::Cluster(
        cluster.to_string(),
        format!(
            "the scenario has no cluster \"{cluster}\" (clusters: {}; `*` is the fleet){}",
            names.join(", "),
            crate::suggest::suggestion(cluster, &names)
        ),
    ))
}

/// The lowest objective, ties to the earliest.
fn best_index(evaluations: &[Evaluation]) -> Option<usize> {
    (0..evaluations.len()).reduce(|b, i| {
        if evaluations[i].objective < evaluations[b].objective {
            i
        } else {
            b
        }
    })
}

fn nothing(evaluations: &[Evaluation]) -> CalibrateError {
    let why = evaluations
        .iter()
        .find_map(|e| e.failure.clone())
        .unwrap_or_else(|| "no point was evaluated".into());
    CalibrateError::NothingCompared(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_of_three_kinds() {
        let p: ParamRange = "ca.pca.workers=2..32".parse().unwrap();
        assert_eq!((p.kind, p.lo, p.hi), (Kind::Integer, 2.0, 32.0));
        let p: ParamRange = "ca.pca.contention_sigma=0..0.1".parse().unwrap();
        assert_eq!((p.kind, p.lo, p.hi), (Kind::Float, 0.0, 0.1));
        let p: ParamRange = "ca.pca.service_mean=50ms..0.4s".parse().unwrap();
        assert_eq!((p.kind, p.lo, p.hi), (Kind::Duration, 5e7, 4e8));
        assert_eq!(p.format(p.quantise(123_456_789.4)), "123.457ms");
        assert_eq!(p.set_text(1.5e8), "ca.pca.service_mean=150ms");
        let p: ParamRange = "a.b=0..1".parse().unwrap();
        assert_eq!(p.kind, Kind::Integer);
        let p: ParamRange = "a.b=0.0..1".parse().unwrap();
        assert_eq!((p.kind, p.format(1.0)), (Kind::Float, "1.0".to_string()));
        for (bad, want) in [
            ("a.b", "expected PATH=LO..HI"),
            ("a.b=1", "expected a range LO..HI"),
            ("a.b=5..1", "range 5..1 is empty: LO > HI"),
            (
                "a.b=1..x",
                "LO and HI must both be integers, numbers or durations",
            ),
            ("a.b=1s..2", "LO and HI must both be"),
            ("a.b=inf..1e999", "must be finite"),
        ] {
            let e = bad.parse::<ParamRange>().unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn best_is_lowest_then_earliest() {
        let e = |o: f64| Evaluation {
            values: vec![],
            objective: o,
            series: vec![],
            failure: None,
            round: 0,
        };
        assert_eq!(
            best_index(&[e(2.0), e(1.0), e(1.0), e(f64::INFINITY)]),
            Some(1)
        );
        assert_eq!(best_index(&[]), None);
    }
}
