//! `fleetsim schema`: the JSON Schema editors read, checked against the loader on the
//! shipped scenarios and the bad ones.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{fleetsim, root};

/// The schema the binary prints.
fn schema() -> Value {
    fleetsim(&["schema"]).expect_code(0).json()
}

/// A TOML file as the JSON an editor validates.
fn toml_as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    serde_json::to_value(table).unwrap()
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The validator's complaints about `doc`, one line each.
fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn schema_is_a_valid_draft_07_json_schema() {
    let s = schema();
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::draft7::meta::validate(&s).unwrap_or_else(|e| panic!("not draft-07: {e}"));
    jsonschema::draft7::new(&s).unwrap();
    assert_eq!(s["additionalProperties"], false);
}

#[test]
fn every_scenario_validate_accepts_validates_against_the_schema() {
    let validator = jsonschema::draft7::new(&schema()).unwrap();
    let mut files = toml_files("scenarios");
    files.extend(toml_files("tests/data"));
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        if fleetsim(&["validate", &rel]).code != 0 {
            continue;
        }
        checked += 1;
        let problems = errors(&validator, &toml_as_json(file));
        if !problems.is_empty() {
            failures.push(format!("{rel}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(checked >= 16, "only {checked} scenarios were accepted");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// tests/data/full.toml uses every key the loader reads (a unit test holds it to the serde
/// structs): each must be a property of the schema, so a struct field the schema lacks
/// fails here by its dotted path.
#[test]
fn schema_names_every_key_of_the_full_example() {
    fn walk(schema: &Value, doc: &Value, path: &str, missing: &mut Vec<String>) {
        let (Some(table), Some(obj)) = (doc.as_object(), schema.as_object()) else {
            return;
        };
        for (key, value) in table {
            let p = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match (
                obj.get("properties").and_then(|ps| ps.get(key)),
                obj.get("additionalProperties"),
            ) {
                (Some(sub), _) => walk(sub, value, &p, missing),
                (None, Some(sub)) if sub.is_object() => walk(sub, value, &p, missing),
                // A section another layer reads: its own keys are free-form below it.
                (None, None) if !obj.contains_key("properties") => {}
                (None, _) => missing.push(p),
            }
        }
    }
    let mut missing = Vec::new();
    let full = toml_as_json(&root().join("tests/data/full.toml"));
    walk(&schema(), &full, "", &mut missing);
    assert!(missing.is_empty(), "the schema lacks {missing:?}");
}

#[test]
fn schema_rejects_unknown_keys_and_wrong_types() {
    let validator = jsonschema::draft7::new(&schema()).unwrap();
    let ok = |toml: &str| {
        let doc = serde_json::to_value(toml.parse::<toml::Table>().unwrap()).unwrap();
        errors(&validator, &doc)
    };
    assert_eq!(
        ok("[cluster.a.istiod]\nreplicas = 3\n"),
        Vec::<String>::new()
    );
    for (doc, at) in [
        ("[cluster.a.istiod]\nreplica = 3\n", "/cluster/a/istiod"),
        (
            "[cluster.a.istiod]\nreplicas = \"3\"\n",
            "/cluster/a/istiod/replicas",
        ),
        ("[rollout]\npacing = \"batchs\"\n", "/rollout/pacing"),
        ("[scenario]\nhorizon = 10\n", "/scenario/horizon"),
        ("[scenario]\nhorizon = \"10x\"\n", "/scenario/horizon"),
        ("[clusters.a]\n", ""),
        ("[sweep]\nseed = 3\n", "/sweep"),
        ("[expect]\nasserts = []\n", "/expect"),
    ] {
        let problems = ok(doc);
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{at}: "))),
            "{doc:?} should be rejected at {at:?}, got {problems:?}"
        );
    }
}

/// The loader's own shape errors (unknown keys, wrong types, bad durations and enum
/// values) are errors of the schema too.
#[test]
fn schema_rejects_the_bad_scenarios_of_shape() {
    let validator = jsonschema::draft7::new(&schema()).unwrap();
    let mut accepted = Vec::new();
    let mut checked = 0;
    for file in toml_files("tests/bad-scenarios") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let shape = name.starts_with("unknown-")
            && !name.ends_with("-reference.toml")
            && !name.starts_with("unknown-named")
            || name.starts_with("wrong-type-")
            || name.starts_with("bad-duration-")
            || name == "bad-enum-value.toml"
            || name == "certificates-unknown-key.toml";
        if !shape {
            continue;
        }
        checked += 1;
        if errors(&validator, &toml_as_json(&file)).is_empty() {
            accepted.push(name);
        }
    }
    assert!(checked >= 15, "only {checked} files");
    assert!(accepted.is_empty(), "the schema accepts {accepted:?}");
}

/// The schema's duration pattern accepts what the parser accepts.
#[test]
fn schema_duration_pattern_agrees_with_the_parser() {
    let s = schema();
    let horizon = &s["properties"]["scenario"]["properties"]["horizon"];
    let validator = jsonschema::draft7::new(horizon).unwrap();
    for text in [
        "10s", "250ms", "5m", "1h30m", "1.5h", "2d", "0", " 2d ", "1500us", "3µs", "7ns", "2min",
        ".5s", "1.s", "1s.5s", "", "10", "-5s", "5x", "s", "1e3s", "1..2s", "00", "1.2.3s", "h1",
        "1 s", "0s",
    ] {
        let parser = fleetsim::duration::parse_duration(text).is_ok();
        let schema = validator.is_valid(&Value::String(text.into()));
        assert_eq!(schema, parser, "{text:?}: schema {schema}, parser {parser}");
    }
    assert!(validator.is_valid(&Value::from(0)));
    assert!(!validator.is_valid(&Value::from(10)));
}

#[test]
fn schema_out_writes_the_same_bytes_as_stdout() {
    let printed = fleetsim(&["schema"]).expect_code(0).stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("editor/fleetsim.schema.json");
    let run = fleetsim(&["schema", "-o", file.to_str().unwrap()]).expect_code(0);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), printed);
    let run = fleetsim(&["schema", "--out", dir.path().to_str().unwrap()]).expect_code(2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
}
