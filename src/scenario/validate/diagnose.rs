//! Schema diagnosis: when the document does not deserialise as a whole, a walk guided by
//! the schema ([`TableSchema`]) reports every unknown key (with the nearest known one),
//! every misplaced table and every ill-typed leaf (each deserialised alone), and returns
//! the document without them, so that range and reference checks still run on the rest.

use crate::keypath::join;
use crate::suggest::suggestion;

use super::super::error::ErrorKind;
use super::super::raw::{Shape, TableSchema};
use super::checker::{short, Checker};

/// Reports unknown keys, misplaced values and ill-typed leaves under `path`; returns the
/// table without them.
pub(super) fn diagnose(
    t: &toml::Table,
    schema: &TableSchema,
    path: &str,
    v: &mut Checker<'_>,
) -> toml::Table {
    let mut out = toml::Table::new();
    for (key, value) in t {
        let p = join(path, key);
        match schema.shape(key) {
            None => {
                let msg = format!("unknown field{}", suggestion(key, schema.fields()));
                v.push(&p, ErrorKind::UnknownField, msg);
            }
            Some(Shape::Leaf) => match schema.check_leaf(key, value) {
                Ok(()) => {
                    out.insert(key.clone(), value.clone());
                }
                Err(m) => v.push(&p, ErrorKind::Type, m),
            },
            Some(Shape::Opaque) => match value {
                toml::Value::Table(_) => {
                    out.insert(key.clone(), value.clone());
                }
                other => v.push(&p, ErrorKind::Type, expected_table(&p, other)),
            },
            Some(Shape::Table(sub)) => match value {
                toml::Value::Table(st) => {
                    let cleaned = diagnose(st, sub, &p, v);
                    out.insert(key.clone(), toml::Value::Table(cleaned));
                }
                other => v.push(&p, ErrorKind::Type, expected_table(&p, other)),
            },
            Some(Shape::Map(sub)) => match value {
                toml::Value::Table(named) => {
                    let mut m = toml::Table::new();
                    for (name, entry) in named {
                        let pn = join(&p, name);
                        match entry {
                            toml::Value::Table(et) => {
                                let cleaned = diagnose(et, sub, &pn, v);
                                m.insert(name.clone(), toml::Value::Table(cleaned));
                            }
                            other => v.push(
                                &pn,
                                ErrorKind::Type,
                                format!(
                                    "expected a table [{pn}] describing {}, got {} {}",
                                    sub.what,
                                    other.type_str(),
                                    short(other)
                                ),
                            ),
                        }
                    }
                    out.insert(key.clone(), toml::Value::Table(m));
                }
                other => v.push(
                    &p,
                    ErrorKind::Type,
                    format!(
                        "expected tables [{p}.<name>], got {} {}",
                        other.type_str(),
                        short(other)
                    ),
                ),
            },
        }
    }
    out
}

fn expected_table(path: &str, got: &toml::Value) -> String {
    format!(
        "expected a table [{path}], got {} {}",
        got.type_str(),
        short(got)
    )
}
