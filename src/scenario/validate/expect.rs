//! `[expect]`: the assertions `fleetsim check` judges, each parsed in the predicate
//! language over the run's figures and its scope resolved against the scenario's
//! clusters and templates.
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

use crate::metrics::FIGURES;
use crate::predicate::{self, Body, ScopeSyntax};
use crate::suggest::suggestion;

use super::super::error::ScenarioError;
use super::super::sections::*;
use super::super::types::{ClusterTemplate, Scenario};
use super::SectionContext;

fn describe(v: &toml::Value) -> String {
    let shown = v.to_string();
    let shown: String = if shown.chars().count() > 40 {
        shown.chars().take(40).chain("...".chars()).collect()
    } else {
        shown
    };
    format!("{} {shown}", v.type_str())
}

/// The validated section; `None` (with errors) if anything is wrong.
pub(super) fn expectations(
    ctx: &SectionContext<'_>,
    table: &toml::Table,
    errors: &mut Vec<ScenarioError>,
) -> Option<Expectations> {
    let before = errors.len();
    for key in table.keys() {
        if !EXPECT_KEYS.contains(&key.as_str()) {
            let hint = if FIGURES.lookup(key).is_some() {
                format!(
                    "unknown field; write assertions as strings, e.g. assert = [\"{key} == ...\"]"
                )
            } else {
                format!("unknown field{}", suggestion(key, EXPECT_KEYS))
            };
            errors.push(ctx.error(&format!("expect.{key}"), hint));
        }
    }
    let seeds = match table.get("seeds") {
        None => 1,
        Some(v) => match v.as_integer() {
            Some(n) if (1..=i64::from(MAX_EXPECT_SEEDS)).contains(&n) => n as u32,
            Some(n) => {
                errors.push(ctx.error(
                    "expect.seeds",
                    format!("must be 1..={MAX_EXPECT_SEEDS}, got {n}"),
                ));
                1
            }
            None => {
                errors.push(ctx.error(
                    "expect.seeds",
                    format!("must be an integer, got {}", describe(v)),
                ));
                1
            }
        },
    };
    let mut assertions = Vec::new();
    match table.get("assert") {
        None => errors.push(ctx.error(
            "expect",
            "no assertions: add assert = [\"recovered == true\", ...]".into(),
        )),
        Some(toml::Value::Array(items)) if items.is_empty() => {
            errors.push(ctx.error("expect.assert", "no assertions: the list is empty".into()))
        }
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("expect.assert[{i}]");
                let Some(text) = item.as_str() else {
                    errors.push(
                        ctx.error(&path, format!("must be a string, got {}", describe(item))),
                    );
                    continue;
                };
                match assertion(text, seeds, ctx.scenario) {
                    Ok((scope, predicate, quantifier)) => assertions.push(Assertion {
                        text: text.trim().to_string(),
                        path,
                        scope,
                        predicate,
                        quantifier,
                    }),
                    Err(e) => errors.push(ctx.error(&path, format!("{text:?}: {e}"))),
                }
            }
        }
        Some(v) => errors.push(ctx.error(
            "expect.assert",
            format!("must be an array of strings, got {}", describe(v)),
        )),
    }
    (errors.len() == before).then_some(Expectations { seeds, assertions })
}

/// Parses `[SCOPE:] BODY [over N seeds]` and resolves its scope.
fn assertion(
    text: &str,
    default_seeds: u32,
    scenario: &Scenario,
) -> Result<(Scope, predicate::Predicate, Quantifier), String> {
    let a =
        predicate::parse_assertion(text, &FIGURES, MAX_EXPECT_SEEDS).map_err(|e| e.to_string())?;
    let scope = match a.scope {
        ScopeSyntax::Fleet => Scope::Fleet,
        ScopeSyntax::Cluster(name) => {
            let indices = resolve(scenario, &name)?;
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

/// The clusters a scope names: `*` (every cluster), a cluster, or a template (`count` >
/// 1: all its instances).
fn resolve(scenario: &Scenario, name: &str) -> Result<Vec<usize>, String> {
    if name == "*" {
        return Ok((0..scenario.clusters.len()).collect());
    }
    if let Some(indices) = scenario.clusters_named(name) {
        return Ok(indices);
    }
    // Templates of several clusters first, then the clusters of none of them.
    let many: Vec<&ClusterTemplate> = scenario.templates.iter().filter(|t| t.count > 1).collect();
    let in_template = |i: usize| many.iter().any(|t| t.clusters.contains(&i));
    let mut known: Vec<&str> = many.iter().map(|t| t.name.as_str()).collect();
    known.extend(
        scenario
            .clusters
            .iter()
            .enumerate()
            .filter(|(i, _)| !in_template(*i))
            .map(|(_, c)| c.name.as_str()),
    );
    known.truncate(12);
    Err(format!(
        "unknown cluster {name:?}; clusters: {}, or * for every cluster",
        known.join(", ")
    ))
}
