//! The scenario format as a JSON Schema (draft-07), for editors (`fleetsim schema`).
//!
//! Derived from the raw layer's serde structs ([`super::raw`]) by `schemars`: their field
//! names, `deny_unknown_fields` (`additionalProperties: false`), doc comments
//! (`description`) and leaf types (an integer, a number, a string of a set, a duration
//! string matching [`crate::duration::DURATION_PATTERN`]). A key the loader accepts is a
//! key of the schema and no other is: the two cannot drift apart. What only validation
//! knows (ranges, references between names, keys of another CA kind) stays with
//! `fleetsim validate`.
//!
//! Draft-07 because Taplo (Even Better TOML) validates with draft-07 and completes from
//! `properties` / `additionalProperties`; every subschema is inlined (no `$ref`) so a
//! hover shows the field's own description.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::raw::RawDocument;
use crate::duration::DURATION_PATTERN;

/// What every duration's description ends with: the format the parser reads.
const DURATION_FORMAT: &str =
    "A duration: one or more <number><unit> terms, units ns us ms s m h d \
     (\"250ms\", \"10s\", \"5m\", \"1h30m\", \"1.5h\"), or a bare 0.";

/// The schema as a JSON value.
pub fn json_schema() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<RawDocument>()
        .to_value();
    tidy(&mut schema);
    if let Value::Object(root) = &mut schema {
        root.insert("title".into(), "fleetsim scenario".into());
        root.insert(
            "$comment".into(),
            format!(
                "Written by `fleetsim schema` (fleetsim {}); the reference is docs/scenario.md.",
                env!("CARGO_PKG_VERSION")
            )
            .into(),
        );
    }
    schema
}

/// The schema as `fleetsim schema` prints it: pretty JSON and a newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// TOML has no null: an omitted key is how a value is left out, so the `null` that
/// schemars allows for every `Option` field (and a `null` default) goes. A duration's
/// description says its format.
fn tidy(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if map.get("pattern").and_then(Value::as_str) == Some(DURATION_PATTERN) {
                let text = match map.get("description").and_then(Value::as_str) {
                    Some(d) => format!("{d} {DURATION_FORMAT}"),
                    None => DURATION_FORMAT.to_string(),
                };
                map.insert("description".into(), text.into());
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(options)) = map.get_mut("anyOf") {
                options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                if options.len() == 1 {
                    if let Value::Object(only) = options.remove(0) {
                        map.remove("anyOf");
                        for (k, val) in only {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|x| !x.is_null());
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::raw::{Shape, TableSchema, DOCUMENT};

    /// Every field serde reads is a property of the schema, and no other; every table
    /// the loader closes is closed in the schema.
    #[test]
    fn schema_has_every_field_the_loader_reads_and_no_other() {
        fn walk(t: &TableSchema, schema: &Value, path: &str) {
            assert_eq!(schema["type"], "object", "{path}");
            assert_eq!(schema["additionalProperties"], false, "{path}");
            let props = schema["properties"].as_object().expect(path);
            let mut in_schema: Vec<&str> = props.keys().map(String::as_str).collect();
            let mut fields = t.fields().to_vec();
            in_schema.sort_unstable();
            fields.sort_unstable();
            assert_eq!(in_schema, fields, "{path}");
            for field in t.fields() {
                let sub = &props[*field];
                let p = format!("{path}.{field}");
                match t.shape(field) {
                    Some(Shape::Table(c)) => walk(c, sub, &p),
                    Some(Shape::Map(c)) => {
                        assert_eq!(sub["type"], "object", "{p}");
                        walk(c, &sub["additionalProperties"], &format!("{p}.<name>"));
                    }
                    _ => assert!(sub.is_object() || sub == true, "{p}: {sub}"),
                }
            }
        }
        walk(&DOCUMENT, &json_schema(), "");
    }

    #[test]
    fn schema_is_draft_07_without_null() {
        let text = json_schema_text();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
        assert!(!text.contains("null"), "TOML has no null");
        assert!(!text.contains("$ref"), "every subschema is inlined");
        assert_eq!(json_schema_text(), text, "the same bytes every time");
    }
}
