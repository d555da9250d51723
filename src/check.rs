//! Expectations: the `[expect]` section of a scenario and how runs are judged by it.
//!
//! ```toml
//! [expect]
//! seeds = 3                       # runs for plain assertions: seed, seed+1, seed+2
//! assert = [
//!   "recovered == true",                                 # in every one of the 3 runs
//!   "cluster.payments: metastable == false",             # one cluster
//!   "cluster.web: peak_crashloop_pods == 0",             # every instance of a template
//!   "cluster.*: pod_restarts == 0 over 10 seeds",        # every cluster, 10 runs
//!   "p(time_to_recover_s > 1h) <= 0.05 over 50 seeds",   # a probability over 50 runs
//! ]
//! ```
//!
//! An assertion is `[SCOPE:] BODY [over N seeds]`:
//!
//! - SCOPE is `fleet` (the default: the fleet's figures) or `cluster.NAME` where NAME is
//!   a cluster, a template (`count` > 1: all its instances) or `*` (every cluster). A
//!   cluster scope must hold for each cluster it names.
//! - BODY is a [`Predicate`] (`peak_crashloop_pods <= 0`, `recovered and not metastable`,
//!   `time_to_recover_s <= 1h`): it must hold in every run. Or `p(PREDICATE) OP X`, with
//!   X in `[0, 1]`: the fraction of runs in which the predicate holds (for every cluster
//!   of the scope) compared with X. The 95 % Wilson interval is printed beside it.
//! - `over N seeds` sets the number of runs (default: `seeds`, itself 1 by default).
//!
//! Runs use the seeds `seed, seed+1, ...` from the scenario's `[scenario] seed`, and are
//! shared between assertions: the scenario runs as many times as its widest assertion
//! needs. Every run is a pure function of (scenario, seed), so a verdict replays exactly.

use crate::duration::format_seconds;
use crate::metrics::{Figures, Summary, FIGURES};
use crate::predicate::{self, Body, CompareOp as Op, Predicate, ScopeSyntax, Value};
use crate::scenario::{ScenarioDocument, ScenarioError, ScenarioErrors};
use crate::stats::wilson_interval;

/// Most runs one assertion may ask for.
pub const MAX_SEEDS: u32 = 10_000;

/// Keys of the `[expect]` table.
const KEYS: &[&str] = &["seeds", "assert"];

/// A scenario's validated `[expect]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectations {
    /// Default number of runs for an assertion without `over N seeds`.
    pub seeds: u32,
    /// The assertions, in file order.
    pub assertions: Vec<Assertion>,
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
        op: Op,
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

impl Expectations {
    /// Reads and validates `doc`'s `[expect]` section; `None` when it has none. Every
    /// problem is reported at once, each naming the file, the line of the assertion and
    /// its field path (`fleet.toml:88: expect.assert[1]: ...`).
    pub fn from_document(doc: &ScenarioDocument) -> Result<Option<Expectations>, ScenarioErrors> {
        let Some(table) = &doc.expect else {
            return Ok(None);
        };
        let mut errors: Vec<ScenarioError> = Vec::new();
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                let hint = if FIGURES.lookup(key).is_some() {
                    format!(
                        "unknown field; write assertions as strings, e.g. assert = [\"{key} == ...\"]"
                    )
                } else {
                    format!("unknown field{}", crate::suggest::suggestion(key, KEYS))
                };
                errors.push(doc.error_at(&format!("expect.{key}"), hint));
            }
        }
        let seeds = match table.get("seeds") {
            None => 1,
            Some(v) => match v.as_integer() {
                Some(n) if (1..=i64::from(MAX_SEEDS)).contains(&n) => n as u32,
                Some(n) => {
                    errors.push(
                        doc.error_at("expect.seeds", format!("must be 1..={MAX_SEEDS}, got {n}")),
                    );
                    1
                }
                None => {
                    errors.push(doc.error_at(
                        "expect.seeds",
                        format!("must be an integer, got {}", describe(v)),
                    ));
                    1
                }
            },
        };
        let mut assertions = Vec::new();
        match table.get("assert") {
            None => errors.push(doc.error_at(
                "expect",
                "no assertions: add assert = [\"recovered == true\", ...]",
            )),
            Some(toml::Value::Array(items)) if items.is_empty() => {
                errors.push(doc.error_at("expect.assert", "no assertions: the list is empty"))
            }
            Some(toml::Value::Array(items)) => {
                let clusters = ClusterNames::new(doc);
                for (i, item) in items.iter().enumerate() {
                    let path = format!("expect.assert[{i}]");
                    let Some(text) = item.as_str() else {
                        errors.push(
                            doc.error_at(
                                &path,
                                format!("must be a string, got {}", describe(item)),
                            ),
                        );
                        continue;
                    };
                    match parse_assertion(text, seeds, &clusters) {
                        Ok((scope, predicate, quantifier)) => assertions.push(Assertion {
                            text: text.trim().to_string(),
                            path,
                            scope,
                            predicate,
                            quantifier,
                        }),
                        Err(e) => errors.push(doc.error_at(&path, format!("{text:?}: {e}"))),
                    }
                }
            }
            Some(v) => errors.push(doc.error_at(
                "expect.assert",
                format!("must be an array of strings, got {}", describe(v)),
            )),
        }
        if errors.is_empty() {
            Ok(Some(Expectations { seeds, assertions }))
        } else {
            Err(ScenarioErrors::new(errors))
        }
    }

    /// How many runs the widest assertion needs.
    pub fn runs(&self) -> u32 {
        self.assertions
            .iter()
            .map(|a| a.quantifier.seeds())
            .max()
            .unwrap_or(0)
    }
}

/// The seeds runs use: `base, base+1, ...` (wrapping), `n` of them.
pub fn seeds_from(base: u64, n: u32) -> Vec<u64> {
    (0..u64::from(n)).map(|i| base.wrapping_add(i)).collect()
}

fn describe(v: &toml::Value) -> String {
    let shown = v.to_string();
    let shown: String = if shown.chars().count() > 40 {
        shown.chars().take(40).chain("...".chars()).collect()
    } else {
        shown
    };
    format!("{} {shown}", v.type_str())
}

/// Cluster names a scope may use: instances, templates (with their instances) and `*`.
struct ClusterNames {
    instances: Vec<String>,
    templates: Vec<(String, Vec<usize>)>,
}

impl ClusterNames {
    fn new(doc: &ScenarioDocument) -> Self {
        let instances: Vec<String> = doc
            .scenario
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let mut templates = Vec::new();
        if let Some(toml::Value::Table(declared)) = doc.table().get("cluster") {
            for (name, body) in declared {
                let count = body
                    .get("count")
                    .and_then(toml::Value::as_integer)
                    .unwrap_or(1);
                if count <= 1 {
                    continue;
                }
                // Instances are `<name>-<i>`, i zero-padded to the width of count - 1.
                let width = (count - 1).to_string().len();
                let prefix = format!("{name}-");
                let indices: Vec<usize> = instances
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| {
                        n.strip_prefix(&prefix).is_some_and(|rest| {
                            rest.len() == width
                                && rest.bytes().all(|b| b.is_ascii_digit())
                                && rest.parse::<i64>().is_ok_and(|i| i < count)
                        })
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !indices.is_empty() {
                    templates.push((name.clone(), indices));
                }
            }
        }
        ClusterNames {
            instances,
            templates,
        }
    }

    fn resolve(&self, name: &str) -> Result<Vec<usize>, String> {
        if name == "*" {
            return Ok((0..self.instances.len()).collect());
        }
        if let Some(i) = self.instances.iter().position(|n| n == name) {
            return Ok(vec![i]);
        }
        if let Some((_, indices)) = self.templates.iter().find(|(t, _)| t == name) {
            return Ok(indices.clone());
        }
        let in_template = |i: usize| self.templates.iter().any(|(_, ix)| ix.contains(&i));
        let mut known: Vec<&str> = self.templates.iter().map(|(t, _)| t.as_str()).collect();
        known.extend(
            (0..self.instances.len())
                .filter(|&i| !in_template(i))
                .map(|i| self.instances[i].as_str()),
        );
        known.truncate(12);
        Err(format!(
            "unknown cluster {name:?}; clusters: {}, or * for every cluster",
            known.join(", ")
        ))
    }
}

/// Parses `[SCOPE:] BODY [over N seeds]` (see the module docs).
fn parse_assertion(
    text: &str,
    default_seeds: u32,
    clusters: &ClusterNames,
) -> Result<(Scope, Predicate, Quantifier), String> {
    let a = predicate::parse_assertion(text, &FIGURES, MAX_SEEDS).map_err(|e| e.to_string())?;
    let scope = match a.scope {
        ScopeSyntax::Fleet => Scope::Fleet,
        ScopeSyntax::Cluster(name) => {
            let indices = clusters.resolve(&name)?;
            Scope::Clusters { name, indices }
        }
    };
    let seeds = a.over.unwrap_or(default_seeds);
    Ok(match a.body {
        Body::Every(p) => (scope, p, Quantifier::Every { seeds }),
        Body::Probability {
            predicate,
            op,
            bound,
        } => (
            scope,
            predicate,
            Quantifier::Probability { op, bound, seeds },
        ),
    })
}

/// The verdict on one assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether it holds.
    pub holds: bool,
    /// What was measured, for people: `0 in all 5 runs`, `p = 0.02 (1 of 50 runs), 95 %
    /// interval [0.00, 0.10]`.
    pub measured: String,
    /// When it does not hold: the run that shows it best (to replay).
    pub worst: Option<Witness>,
}

/// A run (and cluster) that shows why an assertion does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Witness {
    /// Its seed.
    pub seed: u64,
    /// The cluster, for cluster scopes.
    pub cluster: Option<String>,
}

/// Judges `assertion` on `runs` (summaries of the seeds `base, base+1, ...` in order;
/// the first `assertion.quantifier.seeds()` are used, or all if there are fewer).
pub fn evaluate(assertion: &Assertion, runs: &[Summary]) -> Outcome {
    let n = (assertion.quantifier.seeds() as usize).min(runs.len());
    let runs = &runs[..n];
    let single = single_figure(&assertion.predicate);
    match assertion.quantifier {
        Quantifier::Every { .. } => every(assertion, runs, single),
        Quantifier::Probability { op, bound, .. } => {
            probability(assertion, runs, single, op, bound)
        }
    }
}

/// The figures of one run that a scope looks at, with the cluster's name.
fn units<'a>(scope: &Scope, run: &'a Summary) -> Vec<(Option<&'a str>, &'a Figures)> {
    match scope {
        Scope::Fleet => vec![(None, &run.fleet)],
        Scope::Clusters { indices, .. } => indices
            .iter()
            .filter_map(|&i| run.clusters.get(i))
            .map(|c| (Some(c.name.as_str()), &c.figures))
            .collect(),
    }
}

/// The figure a predicate is about, when it is about one (`x <= 3`, `recovered`).
fn single_figure(p: &Predicate) -> Option<(&str, Option<Op>)> {
    match p {
        Predicate::Compare { name, op, .. } => Some((name, Some(*op))),
        Predicate::Flag { name, .. } => Some((name, None)),
        _ => None,
    }
}

fn runs_phrase(runs: usize, clusters: Option<usize>) -> String {
    let r = if runs == 1 {
        "1 run".to_string()
    } else {
        format!("{runs} runs")
    };
    match clusters {
        Some(c) if c > 1 => format!("{r} x {c} clusters"),
        _ => r,
    }
}

fn every(a: &Assertion, runs: &[Summary], single: Option<(&str, Option<Op>)>) -> Outcome {
    let mut values: Vec<Value> = Vec::new();
    let mut failing: Vec<(u64, Option<&str>, Option<Value>)> = Vec::new();
    let mut total = 0usize;
    for run in runs {
        for (cluster, f) in units(&a.scope, run) {
            total += 1;
            let v = single.and_then(|(fig, _)| f.get(fig));
            if let Some(v) = v {
                values.push(v);
            }
            if !a.predicate.holds(f) {
                failing.push((run.seed, cluster, v));
            }
        }
    }
    let clusters = match &a.scope {
        Scope::Fleet => None,
        Scope::Clusters { indices, .. } => Some(indices.len()),
    };
    let phrase = runs_phrase(runs.len(), clusters);
    let held = total - failing.len();
    let measured = match single {
        Some((fig, _)) if values.len() == total && total > 0 => {
            describe_values(fig, &values, &phrase)
        }
        _ if held == total => format!("held in all {phrase}"),
        _ if clusters.is_some_and(|c| c > 1) => format!("held in {held} of {total} ({phrase})"),
        _ => format!("held in {held} of {phrase}"),
    };
    let numeric = values.iter().all(|v| matches!(v, Value::Num(_)));
    let measured = if single.is_some() && numeric && held > 0 && held < total {
        format!("{measured}; held in {held} of {total}")
    } else {
        measured
    };
    // The worst failing unit: the most extreme value against the bound, else the first.
    let worst = match single {
        Some((_, Some(op @ (Op::Lt | Op::Le | Op::Gt | Op::Ge)))) => {
            // `x <= b` fails with large values, `x >= b` with small ones.
            let larger_is_worse = matches!(op, Op::Lt | Op::Le);
            extreme(failing.iter(), |x| num(x.2), larger_is_worse)
        }
        _ => failing.first(),
    };
    Outcome {
        holds: failing.is_empty() && total > 0,
        measured,
        worst: worst.map(|(seed, cluster, _)| Witness {
            seed: *seed,
            cluster: cluster.map(str::to_string),
        }),
    }
}

/// The item with the largest (or smallest) value; the first of equals.
fn extreme<T>(
    items: impl Iterator<Item = T>,
    value: impl Fn(&T) -> f64,
    larger_is_worse: bool,
) -> Option<T> {
    let mut best: Option<(T, f64)> = None;
    for item in items {
        let v = value(&item);
        let replace = match &best {
            None => true,
            Some((_, bv)) if larger_is_worse => v.total_cmp(bv).is_gt(),
            Some((_, bv)) => v.total_cmp(bv).is_lt(),
        };
        if replace {
            best = Some((item, v));
        }
    }
    best.map(|(item, _)| item)
}

fn num(v: Option<Value>) -> f64 {
    match v {
        Some(Value::Num(x)) => x,
        Some(Value::Bool(b)) => f64::from(u8::from(b)),
        None => f64::NAN,
    }
}

fn probability(
    a: &Assertion,
    runs: &[Summary],
    single: Option<(&str, Option<Op>)>,
    op: Op,
    bound: f64,
) -> Outcome {
    let events: Vec<bool> = runs
        .iter()
        .map(|run| {
            let u = units(&a.scope, run);
            !u.is_empty() && u.iter().all(|(_, f)| a.predicate.holds(*f))
        })
        .collect();
    let n = events.len() as u64;
    let k = events.iter().filter(|&&e| e).count() as u64;
    let Some(prop) = wilson_interval(k, n) else {
        return Outcome {
            holds: false,
            measured: "no runs".into(),
            worst: None,
        };
    };
    let holds = op.holds(prop.p, bound);
    let measured = format!(
        "p = {:.3} ({k} of {}), 95 % interval [{:.3}, {:.3}]",
        prop.p,
        runs_phrase(runs.len(), None),
        prop.lo,
        prop.hi
    );
    let worst = if holds {
        None
    } else {
        // Too often -> replay a run where it happened; too rarely -> one where it did not.
        let want_event = match op {
            Op::Lt | Op::Le => true,
            Op::Gt | Op::Ge => false,
            Op::Eq => prop.p > bound,
            Op::Ne => true,
        };
        let candidates = runs.iter().zip(&events).filter(|(_, &e)| e == want_event);
        // Among them, the most extreme value of the figure (fleet scope), else the first.
        let pick = match (single, &a.scope) {
            (Some((fig, Some(pop @ (Op::Lt | Op::Le | Op::Gt | Op::Ge)))), Scope::Fleet) => {
                // For `p(x > b)` too high, the run with the largest x; too low, the
                // smallest. Mirrored for `<`.
                let larger_is_worse = matches!(pop, Op::Gt | Op::Ge) == want_event;
                extreme(
                    candidates.map(|(r, _)| r),
                    |r| num(r.fleet.get(fig)),
                    larger_is_worse,
                )
            }
            _ => candidates.map(|(r, _)| r).next(),
        };
        pick.map(|r| Witness {
            seed: r.seed,
            cluster: None,
        })
    };
    Outcome {
        holds,
        measured,
        worst,
    }
}

/// `0 in all 5 runs`, `2796s..2829s (46m36s..47m09s) over 20 runs`, `true in 3 of 5 runs`.
fn describe_values(figure: &str, values: &[Value], phrase: &str) -> String {
    let n = values.len();
    let trues = values.iter().filter(|v| **v == Value::Bool(true)).count();
    if values.iter().all(|v| matches!(v, Value::Bool(_))) {
        return match trues {
            0 if n == 1 => "false".into(),
            t if t == n && n == 1 => "true".into(),
            0 => format!("false in all {phrase}"),
            t if t == n => format!("true in all {phrase}"),
            t => format!("true in {t} of {phrase}"),
        };
    }
    let nums: Vec<f64> = values.iter().map(|v| num(Some(*v))).collect();
    let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let show = |x: f64| format_figure(figure, x);
    if n == 1 {
        show(lo)
    } else if lo == hi {
        format!("{} in all {phrase}", show(lo))
    } else {
        format!("{} .. {} over {phrase}", show(lo), show(hi))
    }
}

/// A figure's value for people: times as `46m41s` (`never` when it did not happen),
/// fractions with 3 decimals, counts as integers.
pub fn format_figure(figure: &str, x: f64) -> String {
    if figure.ends_with("_s") && !figure.ends_with("pod_seconds") {
        return format_seconds(x);
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests;
