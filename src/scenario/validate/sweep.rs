//! `[sweep]`: the grid, its seeds, the failure predicate and how the failure curve is
//! drawn — checked first for its shape, then against the scenario, and every grid point
//! built and validated, so that nothing a sweep would refuse passes `fleetsim validate`.
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

use crate::keypath::join;
use crate::metrics::FIGURES;
use crate::predicate::Predicate;
use crate::suggest::suggestion;

use super::super::error::{ErrorKind, ScenarioError};
use super::super::overrides::Override;
use super::super::sections::*;
use super::strategies::flatten;
use super::{section_of, SectionContext};

/// The section as written, its shape checked.
struct Shape {
    seeds: u64,
    grid: Vec<(String, Vec<toml::Value>)>,
    failure: String,
    x: Option<String>,
    group: Option<Vec<String>>,
    max_failure_p: f64,
}

/// Reads the section's keys and their types; `None` (with errors) if any is wrong.
fn shape(
    ctx: &SectionContext<'_>,
    section: &toml::Table,
    errors: &mut Vec<ScenarioError>,
) -> Option<Shape> {
    let before = errors.len();
    let mut e = |path: &str, message: String| errors.push(ctx.error(path, message));
    for key in section.keys() {
        if !SWEEP_KEYS.contains(&key.as_str()) {
            e(
                &join("sweep", key),
                format!("unknown key {key:?}{}", suggestion(key, SWEEP_KEYS)),
            );
        }
    }
    let seeds = match section.get("seeds") {
        None => DEFAULT_SEEDS,
        Some(toml::Value::Integer(n)) if *n >= 1 && (*n as u64) <= MAX_SEEDS => *n as u64,
        Some(v) => {
            e(
                "sweep.seeds",
                format!("expected an integer 1..={MAX_SEEDS}, got {v}"),
            );
            DEFAULT_SEEDS
        }
    };
    let mut grid = Vec::new();
    match section.get("grid") {
        None => e(
            "sweep",
            "missing `grid`: a table of dotted scenario paths to arrays of values, \
             e.g. [sweep.grid] \"ca.pca.workers\" = [4, 8, 16]"
                .into(),
        ),
        Some(toml::Value::Table(t)) => {
            let mut leaves = Vec::new();
            flatten(t, "", "sweep.grid", &mut leaves);
            for (path, value, file_key) in leaves {
                match value {
                    toml::Value::Array(values) => grid.push((path, values)),
                    v => e(
                        &file_key,
                        format!(
                            "expected an array of values to sweep, got {} {v}",
                            v.type_str()
                        ),
                    ),
                }
            }
        }
        Some(v) => e(
            "sweep.grid",
            format!("expected a table [sweep.grid], got {} {v}", v.type_str()),
        ),
    }
    let failure = match section.get("failure") {
        Some(toml::Value::String(s)) => s.clone(),
        None => {
            e(
                "sweep",
                "missing `failure`: the predicate that makes a run count as failed, \
                 e.g. failure = \"peak_crashloop_pods > 0 or time_to_recover_s > 1h\""
                    .into(),
            );
            String::new()
        }
        Some(v) => {
            e(
                "sweep.failure",
                format!("expected a predicate string, got {} {v}", v.type_str()),
            );
            String::new()
        }
    };
    let x = match section.get("x") {
        None => None,
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(v) => {
            e(
                "sweep.x",
                format!("expected a grid key (string), got {} {v}", v.type_str()),
            );
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
                    v => e(
                        "sweep.group",
                        format!("expected grid keys (strings), got {} {v}", v.type_str()),
                    ),
                }
            }
            Some(keys)
        }
        Some(v) => {
            e(
                "sweep.group",
                format!(
                    "expected a grid key or an array of them, got {} {v}",
                    v.type_str()
                ),
            );
            None
        }
    };
    let max_failure_p = match section.get("max_failure_p") {
        None => DEFAULT_MAX_FAILURE_P,
        Some(toml::Value::Float(p)) => *p,
        Some(toml::Value::Integer(p)) => *p as f64,
        Some(v) => {
            e(
                "sweep.max_failure_p",
                format!("expected a probability 0..=1, got {} {v}", v.type_str()),
            );
            DEFAULT_MAX_FAILURE_P
        }
    };
    (errors.len() == before).then_some(Shape {
        seeds,
        grid,
        failure,
        x,
        group,
        max_failure_p,
    })
}

fn axis_list(axes: &[Axis]) -> String {
    axes.iter()
        .map(|a| a.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The validated section; `None` (with errors) if anything is wrong. Strategy names in
/// the grid are checked against `strategies` unless `strategies_ok` is false (their
/// section has errors of its own, already reported).
pub(super) fn sweep(
    ctx: &SectionContext<'_>,
    section: &toml::Table,
    strategies: &[Strategy],
    strategies_ok: bool,
    errors: &mut Vec<ScenarioError>,
) -> Option<SweepSpec> {
    let spec = shape(ctx, section, errors)?;
    let before = errors.len();
    let err = |path: &str, message: String| ctx.error(path, message);
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

    // Each axis alone.
    let mut axes: Vec<Axis> = Vec::new();
    for (key, values) in &spec.grid {
        let key_path = join("sweep.grid", key);
        let e = |message: String| err(&key_path, message);
        if values.is_empty() {
            errors.push(e("no values: give at least one".into()));
            continue;
        }
        let path = if key == STRATEGY_KEY {
            key.clone()
        } else {
            match Override::new(key, values[0].clone()) {
                Ok(o) if section_of(o.segments()).is_some() => {
                    errors.push(e(format!(
                        "{}: a grid key is a scenario value; [{}] is not swept",
                        o.path(),
                        section_of(o.segments()).unwrap_or_default()
                    )));
                    continue;
                }
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
        // `1` and `1.0` are one point on the figure's axis (and one curve point).
        let number = |v: &toml::Value| match v {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) => Some(*f),
            _ => None,
        };
        if let Some((i, j)) = (0..values.len()).find_map(|i| {
            let x = number(&values[i])?;
            (0..i)
                .find(|&j| number(&values[j]) == Some(x))
                .map(|j| (i, j))
        }) {
            errors.push(e(format!(
                "value {} (at {i}) is the same number as {} (at {j}): listed twice",
                labels[i], labels[j]
            )));
            continue;
        }
        let mut axis_errors: Vec<String> = Vec::new();
        for v in values {
            if key == STRATEGY_KEY {
                match v {
                    toml::Value::String(name) => {
                        if strategies_ok && find_strategy(strategies, name).is_none() {
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
            if let Err(es) = (ctx.with)(std::slice::from_ref(&ov)) {
                for se in es.iter() {
                    // An unknown path is the same for every value: say it once.
                    let m = if se.kind == ErrorKind::Override {
                        format!("{}: {}", se.path, se.message)
                    } else if se.path.is_empty() {
                        format!("value {}: {}", label(v), se.message)
                    } else {
                        format!("value {}: {}: {}", label(v), se.path, se.message)
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
    if errors.len() != before || !strategies_ok {
        return None;
    }

    let n_points = axes
        .iter()
        .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
        .filter(|&n| n <= MAX_POINTS);
    let Some(n_points) = n_points else {
        errors.push(err(
            "sweep.grid",
            format!(
                "the grid has {} points; at most {MAX_POINTS}",
                axes.iter()
                    .map(|a| a.values.len().to_string())
                    .collect::<Vec<_>>()
                    .join(" x ")
            ),
        ));
        return None;
    };
    let runs = n_points.saturating_mul(spec.seeds);
    if runs > MAX_RUNS {
        errors.push(err(
            "sweep.seeds",
            format!(
                "{n_points} points x {} seeds = {runs} runs; at most {MAX_RUNS}",
                spec.seeds
            ),
        ));
        return None;
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
                let s = find_strategy(strategies, &a.labels[k]).expect("checked above");
                overrides.extend(s.overrides.iter().cloned());
            } else {
                overrides.push(Override::new(&a.path, a.values[k].clone()).expect("checked above"));
            }
        }
        match (ctx.with)(&overrides) {
            // Validated, then dropped: held, 400 points of 10 000 clusters would take
            // about 6 GiB (issue 11 row 5); the sweep builds each again when it runs.
            Ok(_) => points.push(GridPoint {
                index: p,
                labels,
                overrides,
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
                            format!("point {p} ({}): {}: {}", at.join(", "), se.path, se.message),
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
    if errors.len() != before {
        return None;
    }
    Some(SweepSpec {
        seeds: spec.seeds,
        axes,
        failure: failure.expect("checked above"),
        failure_text: spec.failure,
        x,
        group,
        max_failure_p: spec.max_failure_p,
        points,
    })
}
