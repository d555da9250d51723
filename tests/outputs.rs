//! Outputs for the tools SREs use: `run --openmetrics` parsed by the Prometheus Python
//! client's OpenMetrics parser, `check --format json` and `check --junit` parsed as
//! JSON and as JUnit XML.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{fleetsim_in, root, scenario, skip_unless_required};

/// Set by `.ci/run`: a missing parser is a failure, not a skip.
const REQUIRE: &str = "FLEETSIM_REQUIRE_PARSERS";

/// A python3 that can import `module`, installing `package` with pip under the test
/// target directory when it cannot (kept for the next run); `None` after saying why.
fn python_with(module: &str, package: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    let python = ["python3", "python"].iter().find_map(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| PathBuf::from(p))
    });
    let Some(python) = python else {
        skip_unless_required(REQUIRE, &format!("parsing with {module}"), "no python3");
        return None;
    };
    let importable = |path: Option<&Path>| {
        let mut c = Command::new(&python);
        if let Some(p) = path {
            c.env("PYTHONPATH", p);
        }
        c.args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable(None) {
        return Some((python, None));
    }
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(package);
    if importable(Some(&target)) {
        return Some((python, Some(target)));
    }
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--retries", "1", "--timeout", "20", "--upgrade", "--target"])
        .arg(&target)
        .arg(package)
        .output()
        .expect("run pip");
    if out.status.success() && importable(Some(&target)) {
        return Some((python, Some(target)));
    }
    skip_unless_required(
        REQUIRE,
        &format!("parsing with {module}"),
        &format!(
            "{module} is not installed and `pip install {package}` failed (no network?): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
    );
    None
}

/// Runs a Python script with `path` on PYTHONPATH; its stdout as JSON.
fn python_json(python: &Path, path: Option<&Path>, script: &str, arg: &Path) -> Value {
    let mut c = Command::new(python);
    if let Some(p) = path {
        c.env("PYTHONPATH", p);
    }
    let out = c
        .args(["-c", script])
        .arg(arg)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

const OPENMETRICS_SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
print(json.dumps({
    "families": {f.name: f.type for f in fams},
    "samples": sum(len(f.samples) for f in fams),
    "untimed": sum(1 for f in fams for s in f.samples if s.timestamp is None),
    "clusters": sorted({s.labels.get("cluster", "") for f in fams for s in f.samples}),
    "first_ts": min(float(s.timestamp) for f in fams for s in f.samples),
}))
"#;

#[test]
fn openmetrics_parses_with_the_prometheus_parser_and_ends_with_eof() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sc = scenario("incident-ca-herd.toml");
    let run = fleetsim_in(
        d,
        &[
            "run",
            sc.to_str().unwrap(),
            "--out",
            "out",
            "--openmetrics",
            "m/incident.om.txt",
            "--start",
            "2026-03-01T02:00:00Z",
        ],
    )
    .expect_code(0);
    assert!(run.stdout.contains("m/incident.om.txt"), "{}", run.stdout);
    let path = d.join("m/incident.om.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("\n# EOF\n"));
    // Names like the real components' where one exists.
    for name in [
        "kube_pod_status_ready",
        "kube_pod_container_status_waiting_reason",
        "kube_deployment_status_replicas_ready",
        "fleetsim_ca_queue",
        "fleetsim_run_time_to_recover_s",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} gauge")),
            "{name} missing"
        );
    }
    // The same run gives the same bytes.
    fleetsim_in(
        d,
        &[
            "run",
            sc.to_str().unwrap(),
            "--out",
            "out",
            "--openmetrics",
            "again.txt",
            "--start",
            "2026-03-01T02:00:00Z",
        ],
    )
    .expect_code(0);
    assert_eq!(text, std::fs::read_to_string(d.join("again.txt")).unwrap());
    // Checked before the run: a directory is not a file; a bad start is a usage error.
    std::fs::create_dir(d.join("adir")).unwrap();
    let bad = fleetsim_in(d, &["run", "--openmetrics", "adir"]).expect_code(2);
    assert!(bad.stderr.contains("is a directory"), "{}", bad.stderr);
    fleetsim_in(d, &["run", "--openmetrics", "x", "--start", "yesterday"]).expect_code(2);

    let Some((python, path_env)) = python_with("prometheus_client", "prometheus-client") else {
        return;
    };
    let v = python_json(&python, path_env.as_deref(), OPENMETRICS_SCRIPT, &path);
    assert_eq!(v["families"]["kube_pod_status_ready"], "gauge", "{v}");
    assert_eq!(v["families"]["fleetsim_run"], "info", "{v}");
    assert_eq!(v["untimed"], 0, "every sample has a timestamp: {v}");
    assert!(v["samples"].as_u64().unwrap() > 1000, "{v}");
    assert!(v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "payments"));
    // 2026-03-01T02:00:00Z
    assert_eq!(v["first_ts"].as_f64().unwrap(), 1_772_330_400.0, "{v}");
}

const JUNIT_SCRIPT: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suites = []
for s in root.findall("testsuite"):
    cases = s.findall("testcase")
    assert int(s.get("tests")) == len(cases)
    assert int(s.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
    suites.append({
        "name": s.get("name"),
        "tests": len(cases),
        "failures": int(s.get("failures")),
        "cases": [c.get("name") for c in cases],
        "classnames": sorted({c.get("classname") for c in cases}),
        "failed": [c.find("failure").get("message") for c in cases if c.find("failure") is not None],
    })
print(json.dumps({"tests": int(root.get("tests")), "failures": int(root.get("failures")), "suites": suites}))
"#;

#[test]
fn check_writes_json_and_junit_with_one_case_per_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("c.toml"),
        "[scenario]\nname = \"c\"\nhorizon = \"20m\"\n[ca.pca]\n[cluster.a]\n\
         [expect]\nassert = [\"recovered == true\", \"pods_total == 999\", \"p(metastable) <= 0.7 over 2 seeds\"]\n",
    )
    .unwrap();
    let run = fleetsim_in(
        d,
        &[
            "check",
            "c.toml",
            "--format",
            "json",
            "--junit",
            "reports/junit.xml",
        ],
    )
    .expect_code(1);
    let v = run.json();
    assert_eq!(v["assertions"], 3, "{v}");
    assert_eq!(v["failed"], 1, "{v}");
    let sc = &v["scenarios"][0];
    assert_eq!(sc["scenario"], "c");
    assert_eq!(sc["assertions"][0]["holds"], true);
    assert_eq!(sc["assertions"][1]["holds"], false);
    assert_eq!(sc["assertions"][1]["assertion"], "pods_total == 999");
    assert!(sc["assertions"][1]["worst"]["replay"]
        .as_str()
        .unwrap()
        .starts_with("fleetsim run c.toml --seed 1"));
    let xml = std::fs::read_to_string(d.join("reports/junit.xml")).unwrap();
    assert!(xml.starts_with("<?xml"));

    // The output path is checked before anything runs.
    std::fs::create_dir(d.join("adir")).unwrap();
    let bad = fleetsim_in(d, &["check", "c.toml", "--junit", "adir"]).expect_code(2);
    assert!(bad.stderr.contains("is a directory"), "{}", bad.stderr);

    let Some((python, _)) = python_with("xml.etree.ElementTree", "none") else {
        return;
    };
    let j = python_json(&python, None, JUNIT_SCRIPT, &d.join("reports/junit.xml"));
    assert_eq!(
        (j["tests"].as_u64(), j["failures"].as_u64()),
        (Some(3), Some(1)),
        "{j}"
    );
    let s = &j["suites"][0];
    assert_eq!(s["name"], "c.toml");
    assert_eq!(
        s["cases"],
        serde_json::json!([
            "recovered == true",
            "pods_total == 999",
            "p(metastable) <= 0.7 over 2 seeds"
        ])
    );
    assert!(
        s["failed"][0].as_str().unwrap().contains("pods_total"),
        "{j}"
    );
}

/// Relative link targets (`](path)` / `](path#anchor)`) of a Markdown text.
fn relative_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split('#').next().unwrap_or("").trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_string());
        }
        rest = &after[end.min(after.len())..];
    }
    out
}

#[test]
fn docs_cover_every_output_and_link_only_inside_the_repository() {
    let outputs = std::fs::read_to_string(root().join("docs/outputs.md")).unwrap();
    let mut missing = Vec::new();
    for name in fleetsim::metrics::FIGURES.list() {
        if !outputs.contains(&format!("| `{name}` |")) {
            missing.push(format!("summary figure {name}"));
        }
    }
    for column in fleetsim::metrics::TIMESERIES_HEADER.split(',') {
        if !outputs.contains(&format!("| `{column}` |")) {
            missing.push(format!("timeseries column {column}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/outputs.md does not describe: {}",
        missing.join(", ")
    );
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for needle in ["../shared", "DEFAULTS.md", "DESIGN.md"] {
            if text.contains(needle) {
                bad.push(format!(
                    "{} names {needle}, which a clone does not have",
                    f.display()
                ));
            }
        }
        for link in relative_links(&text) {
            if !f.parent().unwrap().join(&link).exists() {
                bad.push(format!("{}: broken link {link}", f.display()));
            }
        }
    }
    // Source comments and shipped scenarios must not point outside the repository either
    // (src/scenario/types.rs named ../shared/DEFAULTS.md).
    let mut dirs = vec![root().join("src"), root().join("scenarios")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                for needle in ["../shared", "DEFAULTS.md", "DESIGN.md"] {
                    if text.contains(needle) {
                        bad.push(format!("{} names {needle}", p.display()));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_dash_reads_the_scenario_from_standard_input() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let text = "[scenario]\nhorizon = \"5m\"\n[ca.pca]\n[cluster.a]\n[expect]\nassert = [\"pods_total == 4\"]\n";
    for args in [
        vec!["validate", "-"],
        vec!["check", "-"],
        vec!["run", "-", "--out", "o"],
    ] {
        let mut child = Command::new(crate::util::bin())
            .args(&args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("stdin"), "{args:?}: {stdout}");
    }
    assert!(dir.path().join("o/summary.json").is_file());
    // Errors name the input.
    let mut child = Command::new(crate::util::bin())
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[ca.pca]\nworkers = 0\n[cluster.a]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("<stdin>:2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
