//! `[strategies.<name>]`: named bundles of overrides, each applied to the document and
//! validated as a scenario of its own.
//!
//! ```toml
//! [strategies.batches]
//! "rollout.pacing" = "batches"
//! rollout.batch_size = 50            # nested tables mean the same as a quoted path
//! ```
//!
//! An empty bundle is the scenario as written (a baseline). Errors name the strategy
//! (`strategies.<name>`) at the line of the offending key: an unknown path, a value the
//! scenario rejects, a combination it rejects.

use crate::keypath::{join, quote_key};

use super::super::error::{ErrorKind, Origin, ScenarioError};
use super::super::overrides::Override;
use super::super::sections::{Strategy, MAX_STRATEGIES};
use super::{section_of, SectionContext};

/// Names of strategies: 1-100 letters, digits, `-` or `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn at(ctx: &SectionContext<'_>, origin: Origin, path: &str, message: String) -> ScenarioError {
    ScenarioError {
        file: ctx.loc.file.to_string(),
        origin,
        path: path.to_string(),
        kind: ErrorKind::Invalid,
        message,
    }
}

/// The valid strategies of the section, in declaration order; errors go to `errors`.
pub(super) fn strategies(
    ctx: &SectionContext<'_>,
    table: Option<&toml::Table>,
    errors: &mut Vec<ScenarioError>,
) -> Vec<Strategy> {
    let Some(table) = table else {
        return Vec::new();
    };
    if table.len() > MAX_STRATEGIES {
        errors.push(ctx.error(
            "strategies",
            format!(
                "{} strategies; at most {MAX_STRATEGIES} are allowed",
                table.len()
            ),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, bundle) in table {
        let key_path = format!("strategies.{}", quote_key(name));
        let here = ctx.loc.origin(&key_path);
        if !valid_name(name) {
            errors.push(ctx.error(
                &key_path,
                format!("strategy name {name:?}: names are 1-100 letters, digits, '-' or '_'"),
            ));
            continue;
        }
        let Some(bundle) = bundle.as_table() else {
            errors.push(ctx.error(
                &key_path,
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
        let mut origins: Vec<Origin> = Vec::new();
        let mut bad = false;
        for (path, value, file_key) in leaves {
            let origin = ctx.loc.origin(&file_key);
            let mut fail = |message: String| {
                errors.push(at(ctx, origin.clone(), &key_path, message));
                bad = true;
            };
            match Override::new(&path, value) {
                Ok(ov) if section_of(ov.segments()).is_some() => fail(format!(
                    "{}: a strategy sets scenario values; [{}] is not one",
                    ov.path(),
                    section_of(ov.segments()).unwrap_or_default()
                )),
                Ok(ov) if overrides.iter().any(|o| o.path() == ov.path()) => {
                    fail(format!("{} is set twice", ov.path()))
                }
                Ok(ov) => {
                    overrides.push(ov);
                    origins.push(origin);
                }
                Err(e) => fail(e.reason),
            }
        }
        if bad {
            continue;
        }
        if let Err(scenario_errors) = (ctx.with)(&overrides) {
            for e in scenario_errors.iter() {
                // Point at the strategy's key that supplied the value, or at the strategy
                // when the value is the fleet's own and the combination is what fails.
                let (origin, context) = match &e.origin {
                    Origin::Set(text) => (
                        overrides
                            .iter()
                            .position(|o| o.text() == text)
                            .map_or_else(|| here.clone(), |i| origins[i].clone()),
                        String::new(),
                    ),
                    Origin::Line { line: l, .. } => (
                        here.clone(),
                        format!(" (with strategy {name}, at line {l})"),
                    ),
                    Origin::File => (here.clone(), format!(" (with strategy {name})")),
                };
                let what = if e.path.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.path, e.message)
                };
                errors.push(at(ctx, origin, &key_path, format!("{what}{context}")));
            }
            continue;
        }
        out.push(Strategy {
            name: name.clone(),
            overrides,
        });
    }
    out
}

/// Leaves of a bundle as (dotted scenario path, value, canonical path of the key in the
/// file). A top-level key is a dotted path as written (`"rollout.pacing"`); nested
/// tables add their keys to it.
pub(super) fn flatten(
    table: &toml::Table,
    prefix: &str,
    file_prefix: &str,
    out: &mut Vec<(String, toml::Value, String)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            join(prefix, key)
        };
        let file_key = join(file_prefix, key);
        match value {
            toml::Value::Table(t) => flatten(t, &path, &file_key, out),
            v => out.push((path, v.clone(), file_key)),
        }
    }
}
