//! Checks: judging a scenario's `[expect]` assertions on its runs (`fleetsim check`).
//!
//! The section is parsed and validated at load ([`crate::scenario::Expectations`]; its
//! syntax is in `docs/scenario.md`). Here each [`Assertion`] meets the summaries of the
//! runs it asked for:
//!
//! - a plain assertion holds when its predicate holds in every run (and, with a cluster
//!   scope, for every cluster the scope names);
//! - `p(PREDICATE) OP X` holds when the fraction of runs in which the predicate holds
//!   (for every cluster of the scope) satisfies `OP X` by the 95 % Wilson interval:
//!   its upper end for `<`/`<=`, its lower end for `>`/`>=` (the estimate for `==`,
//!   `!=`). The interval is printed beside it and, when it is too wide to decide, about
//!   how many seeds would decide it.
//!
//! Runs use the seeds [`seeds`](crate::engine::rng::seeds)`(seed, n)` from the scenario's
//! `[scenario] seed`, and are shared between assertions: the scenario runs as many times
//! as its widest assertion needs. Every run is a pure function of (scenario, seed), so a
//! verdict replays exactly; a failing one names the run that shows it best.

use crate::duration::format_seconds;
use crate::metrics::{Figures, Summary};
use crate::predicate::{CompareOp as Op, Predicate, Value};
use crate::scenario::{Assertion, Quantifier, Scope};
use crate::stats::wilson_interval;

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
    // Judged by the 95 % Wilson bound: `<=`/`<` by the upper end, `>=`/`>` by the
    // lower end (so 0 failures in 20 runs do not show `p <= 0.05`: the upper end is
    // 0.16); `==`/`!=` by the estimate.
    let judged = match op {
        Op::Lt | Op::Le => prop.hi,
        Op::Gt | Op::Ge => prop.lo,
        Op::Eq | Op::Ne => prop.p,
    };
    let holds = op.holds(judged, bound);
    let mut measured = format!(
        "p = {:.3} ({k} of {}), 95 % interval [{:.3}, {:.3}]",
        prop.p,
        runs_phrase(runs.len(), None),
        prop.lo,
        prop.hi
    );
    if !holds && matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && op.holds(prop.p, bound) {
        // The estimate is on the right side, the interval is not: undecided.
        let side = if matches!(op, Op::Lt | Op::Le) {
            "upper"
        } else {
            "lower"
        };
        measured.push_str(&format!(
            "; too wide to decide: the {side} bound {judged:.3} is not {} {bound}",
            op.as_str()
        ));
        match seeds_to_decide(prop.p, n, op, bound) {
            Some(need) => measured.push_str(&format!(
                " (about {need} seeds would decide it if p stays {:.3})",
                prop.p
            )),
            None => measured.push_str(" (more than 10000000 seeds would be needed)"),
        }
    }
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

/// The fewest runs (more than `n`) at which an observed proportion `p` would be shown to
/// satisfy `op bound` by the 95 % Wilson bound, if it stayed the same; `None` past 10⁷.
pub fn seeds_to_decide(p: f64, n: u64, op: Op, bound: f64) -> Option<u64> {
    let decides = |m: u64| {
        let k = ((p * m as f64).round() as u64).min(m);
        wilson_interval(k, m).is_some_and(|w| match op {
            Op::Lt | Op::Le => op.holds(w.hi, bound),
            _ => op.holds(w.lo, bound),
        })
    };
    const MAX: u64 = 10_000_000;
    let mut hi = n.max(1) * 2;
    while !decides(hi) {
        if hi >= MAX {
            return None;
        }
        hi = (hi * 2).min(MAX);
    }
    // The smallest deciding count in (hi/2, hi] (rounding makes the bound wiggle; this
    // finds one deciding count close to the smallest).
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decides(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
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
