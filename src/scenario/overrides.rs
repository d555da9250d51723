//! `--set PATH=VALUE`: one scenario value replaced by its dotted TOML path before the
//! document is deserialised. Paths follow the schema: a missing leaf (or a missing
//! sub-table such as `cluster.web.istiod`) is created so defaults can be overridden, but
//! a field the schema does not know, or a named table (`ca.<name>`) the document does
//! not define, is an error with the nearest valid key.

use std::fmt;

use super::limits::MAX_PATH_KEYS;
use super::raw::{Shape, DOCUMENT};
use crate::keypath::{join, join_all, split, unquoted};
use crate::suggest::suggestion;

/// One `PATH=VALUE` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    segments: Vec<String>,
    value: toml::Value,
    text: String,
}

/// A `--set` argument that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--set {}: {reason}",
    crate::output::abbreviate(text, super::error::MAX_ECHO_CHARS)
)]
pub struct OverrideSyntaxError {
    /// The argument as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Override {
    /// Parses `PATH=VALUE`. VALUE is read as a TOML value (`5`, `2.5`, `true`, `"10s"`,
    /// `[1, 2]`, `{ a = 1 }`); if it is not valid TOML it is taken as a bare string, so
    /// `ca.pca.service_mean=100ms` works. PATH is dotted keys; a key with a dot in it can
    /// be quoted (`cluster."a.b".count=2`).
    pub fn parse(text: &str) -> Result<Override, OverrideSyntaxError> {
        let err = |reason: &str| OverrideSyntaxError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (path, value) = split_assignment(text).ok_or_else(|| err("expected PATH=VALUE"))?;
        let segments = split(path.trim(), MAX_PATH_KEYS).map_err(|r| err(&r))?;
        let raw = value.trim();
        let value = raw
            .parse::<toml::Value>()
            .unwrap_or_else(|_| toml::Value::String(raw.to_string()));
        Ok(Override {
            segments,
            value,
            text: text.to_string(),
        })
    }

    /// An override from a path and an already typed value (sweep grids).
    pub fn new(path: &str, value: toml::Value) -> Result<Override, OverrideSyntaxError> {
        let segments = split(path, MAX_PATH_KEYS).map_err(|reason| OverrideSyntaxError {
            text: format!("{path}=..."),
            reason,
        })?;
        let text = format!("{}={}", join_all(&segments), value);
        Ok(Override {
            segments,
            value,
            text,
        })
    }

    /// The path, canonical (keys quoted where TOML needs it).
    pub fn path(&self) -> String {
        join_all(&self.segments)
    }

    /// The path's keys.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value.
    pub fn value(&self) -> &toml::Value {
        &self.value
    }

    /// The argument as given (`PATH=VALUE`).
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Override {
    type Err = OverrideSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Override::parse(s)
    }
}

/// Splits at the first `=` outside double quotes.
fn split_assignment(text: &str) -> Option<(&str, &str)> {
    let (i, _) = unquoted(text).find(|&(_, c)| c == '=')?;
    Some((&text[..i], &text[i + 1..]))
}

/// Where an override went wrong: the path prefix and the reason.
pub(crate) struct ApplyError {
    pub path: String,
    pub message: String,
}

/// Applies `ov` to the document, following the schema.
pub(crate) fn apply(doc: &mut toml::Table, ov: &Override) -> Result<(), ApplyError> {
    let mut table = doc;
    let mut shape = Shape::Table(&DOCUMENT);
    let mut path = String::new();
    let n = ov.segments.len();
    for (i, key) in ov.segments.iter().enumerate() {
        let last = i + 1 == n;
        let parent = path.clone();
        path = join(&path, key);
        let fail = |message: String| ApplyError {
            path: path.clone(),
            message,
        };
        let next_shape = match shape {
            Shape::Opaque => Shape::Opaque,
            Shape::Table(schema) => match schema.shape(key) {
                Some(s) => s,
                None => {
                    return Err(fail(format!(
                        "unknown field{}",
                        suggestion(key, schema.fields())
                    )))
                }
            },
            Shape::Map(schema) => {
                if !table.contains_key(key.as_str()) {
                    let names: Vec<&str> = table.keys().map(String::as_str).collect();
                    let what = if parent.is_empty() {
                        "table".to_string()
                    } else {
                        format!("[{parent}.<name>]")
                    };
                    return Err(fail(format!(
                        "the scenario defines no {what} named \"{}\" (--set cannot add one){}",
                        key.escape_debug(),
                        suggestion(key, &names)
                    )));
                }
                Shape::Table(schema)
            }
            // Leaves end the walk below; kept total rather than panicking.
            Shape::Leaf => return Err(fail("is a value, not a table".into())),
        };
        match next_shape {
            Shape::Leaf | Shape::Opaque if last => {
                table.insert(key.clone(), ov.value.clone());
                return Ok(());
            }
            Shape::Leaf => {
                return Err(fail(
                    "is a value, not a table: the path goes too deep".to_string(),
                ))
            }
            Shape::Table(s) | Shape::Map(s) if last => {
                let example = s
                    .fields()
                    .first()
                    .map(|f| format!(", e.g. {}", join(&path, f)))
                    .unwrap_or_default();
                let hint = if matches!(next_shape, Shape::Map(_)) {
                    format!("names {} tables; set a field of one", s.what)
                } else {
                    format!("is a table; set one of its fields{example}")
                };
                return Err(fail(hint));
            }
            _ => {}
        }
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            other => {
                return Err(fail(format!(
                    "is a {} in the scenario, not a table",
                    other.type_str()
                )))
            }
        };
        shape = next_shape;
    }
    Err(ApplyError {
        path,
        message: "empty path".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn parse_values() {
        let o = Override::parse("ca.pca.workers=5").unwrap();
        assert_eq!(o.segments(), ["ca", "pca", "workers"]);
        assert_eq!(o.value(), &toml::Value::Integer(5));
        let o = Override::parse("ca.pca.service_mean=100ms").unwrap();
        assert_eq!(o.value(), &toml::Value::String("100ms".into()));
        let o = Override::parse("ca.pca.service_mean=\"100ms\"").unwrap();
        assert_eq!(o.value(), &toml::Value::String("100ms".into()));
        let o = Override::parse("rollout.waves=[1, 2]").unwrap();
        assert!(o.value().is_array());
        let o = Override::parse("x.y=2.5").unwrap();
        assert_eq!(o.value(), &toml::Value::Float(2.5));
        let o = Override::parse("sweep.grid={ a = 1 }").unwrap();
        assert!(o.value().is_table());
        let o = Override::parse("scenario.name=\"2024\"").unwrap();
        assert_eq!(o.value(), &toml::Value::String("2024".into()));
        let o = Override::parse("cluster.\"a.b=c\".count = true").unwrap();
        assert_eq!(o.segments(), ["cluster", "a.b=c", "count"]);
        assert_eq!(o.value(), &toml::Value::Boolean(true));
        assert_eq!(o.path(), "cluster.\"a.b=c\".count");
        for bad in ["novalue", "=3", "a..b=1", "a.\"b=1", "a.\"b\"c=1", ".a=1"] {
            assert!(Override::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn creates_missing_defaults_but_not_names() {
        let mut d = doc("[ca.pca]\n[cluster.web]\n");
        apply(
            &mut d,
            &Override::parse("cluster.web.istiod.replicas=3").unwrap(),
        )
        .ok()
        .unwrap();
        assert_eq!(
            d["cluster"]["web"]["istiod"]["replicas"].as_integer(),
            Some(3)
        );
        apply(&mut d, &Override::parse("rollout.pacing=batches").unwrap())
            .ok()
            .unwrap();
        assert_eq!(d["rollout"]["pacing"].as_str(), Some("batches"));
        apply(&mut d, &Override::parse("expect.anything.goes=1").unwrap())
            .ok()
            .unwrap();

        let e = apply(
            &mut d,
            &Override::parse("cluster.web.istiod.replica=3").unwrap(),
        )
        .err()
        .unwrap();
        assert_eq!(e.path, "cluster.web.istiod.replica");
        assert!(
            e.message.contains("did you mean \"replicas\""),
            "{}",
            e.message
        );
        let e = apply(&mut d, &Override::parse("cluster.wbe.count=3").unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("did you mean \"web\""), "{}", e.message);
        let e = apply(&mut d, &Override::parse("cluster.web.istiod=3").unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("is a table"), "{}", e.message);
        let e = apply(&mut d, &Override::parse("cluster.web.count.x=3").unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("not a table"), "{}", e.message);
        let e = apply(&mut d, &Override::parse("clusters.web.count=3").unwrap())
            .err()
            .unwrap();
        assert!(
            e.message.contains("did you mean \"cluster\""),
            "{}",
            e.message
        );
    }
}
