//! Strategies: named bundles of overrides in a scenario's `[strategies]` section.
//!
//! ```toml
//! [strategies.all-at-once]
//! "rollout.pacing" = "all_at_once"
//!
//! [strategies.batches]
//! "rollout.pacing" = "batches"
//! "rollout.batch_size" = 50
//! "rollout.batch_interval" = "30s"
//!
//! [strategies.istiod-window]
//! "rollout.istiod_replicas_during" = 1
//! "rollout.pacing" = "aimd"
//! ```
//!
//! Each key is a dotted scenario path, as for `--set` (quote it, or write it as nested
//! tables: `rollout.pacing = "batches"` without quotes means the same). An empty bundle
//! is the scenario as written (a baseline). Bundles are applied on top of the document
//! (after its `--set` overrides), in the order written; every bundle must give a valid
//! scenario on its own.

use crate::scenario::{Origin, Override, ScenarioDocument};

use super::error::{SpecError, SpecErrors};
use super::spec::valid_name;
use crate::keypath::{join as join_key, quote_key};

/// Most strategies a document may define.
pub const MAX_STRATEGIES: usize = 1000;

/// A named rollout / restart strategy: the overrides that select it.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// Its name (`[strategies.<name>]`).
    pub name: String,
    /// Its overrides, in the order written.
    pub overrides: Vec<Override>,
}

/// The strategies of a document, in declaration order, each checked by applying it to
/// the document and validating the result (`doc.scenario_with(&s.overrides)` is then
/// known to succeed). No `[strategies]` section gives an empty list.
///
/// Errors name the file, the line of the offending key, `strategies.<name>` and what is
/// wrong (an unknown path, a value of the wrong type or out of range, a combination the
/// scenario rejects).
pub fn strategies(doc: &ScenarioDocument) -> Result<Vec<Strategy>, SpecErrors> {
    let Some(table) = &doc.strategies else {
        return Ok(Vec::new());
    };
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let err = |line: Option<usize>, path: String, message: String| SpecError {
        file: doc.source.clone(),
        line,
        path,
        message,
    };
    if table.len() > MAX_STRATEGIES {
        return Err(SpecErrors::one(err(
            doc.line_of("strategies"),
            "strategies".into(),
            format!(
                "{} strategies; at most {MAX_STRATEGIES} are allowed",
                table.len()
            ),
        )));
    }
    for (name, bundle) in table {
        let key_path = format!("strategies.{}", quote_key(name));
        let line = doc.line_of(&key_path);
        if !valid_name(name) {
            errors.push(err(
                line,
                key_path,
                format!("strategy name {name:?}: names are 1-100 letters, digits, '-' or '_'"),
            ));
            continue;
        }
        let Some(bundle) = bundle.as_table() else {
            errors.push(err(
                line,
                key_path,
                format!(
                    "expected a table [strategies.{name}] of dotted paths to values, got {} {bundle}",
                    bundle.type_str()
                ),
            ));
            continue;
        };
        let mut leaves = Vec::new();
        flatten(bundle, "", &key_path, &mut leaves);
        let mut overrides: Vec<Override> = Vec::new();
        let mut lines: Vec<Option<usize>> = Vec::new();
        let mut bad = false;
        for (path, value, file_key) in leaves {
            let line = doc.line_of(&file_key).or(line);
            match Override::new(&path, value) {
                Ok(ov) => {
                    if overrides.iter().any(|o| o.path() == ov.path()) {
                        errors.push(err(
                            line,
                            key_path.clone(),
                            format!("{} is set twice", ov.path()),
                        ));
                        bad = true;
                    } else {
                        overrides.push(ov);
                        lines.push(line);
                    }
                }
                Err(e) => {
                    errors.push(err(line, key_path.clone(), e.reason));
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if let Err(scenario_errors) = doc.scenario_with(&overrides) {
            for e in scenario_errors.iter() {
                let (eline, context) = match &e.origin {
                    Origin::Set(text) => (
                        overrides
                            .iter()
                            .position(|o| o.text() == text)
                            .and_then(|i| lines[i])
                            .or(line),
                        String::new(),
                    ),
                    Origin::Line { line: l, .. } => {
                        (Some(*l), format!(" (with strategy {name}, at line {l})"))
                    }
                    Origin::File => (line, format!(" (with strategy {name})")),
                };
                let what = if e.path.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.path, e.message)
                };
                // Point at the strategy, not at a line of the fleet it conflicts with.
                let eline = if context.is_empty() { eline } else { line };
                errors.push(err(eline, key_path.clone(), format!("{what}{context}")));
            }
            continue;
        }
        out.push(Strategy {
            name: name.clone(),
            overrides,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(errors))
    }
}

/// Finds a strategy by name.
pub fn find<'a>(list: &'a [Strategy], name: &str) -> Option<&'a Strategy> {
    list.iter().find(|s| s.name == name)
}

/// Leaves of a bundle as (dotted scenario path, value, canonical path of the key in the
/// file). A top-level key is a dotted path as written (`"rollout.pacing"`); nested
/// tables add their keys to it.
pub(crate) fn flatten(
    table: &toml::Table,
    prefix: &str,
    file_prefix: &str,
    out: &mut Vec<(String, toml::Value, String)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            join_key(prefix, key)
        };
        let file_key = join_key(file_prefix, key);
        match value {
            toml::Value::Table(t) => flatten(t, &path, &file_key, out),
            v => out.push((path, v.clone(), file_key)),
        }
    }
}
