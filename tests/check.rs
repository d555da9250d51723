//! `fleetsim check`: the shipped scenarios meet their expectations, a regressed strategy
//! fails one with exit 1 and a replayable seed, and malformed input (scenario or
//! `[expect]`) exits 2 with file, line and field through every command, never a panic
//! and never an output file.

use std::path::PathBuf;

use crate::scenario::expectations;
use crate::util::{fleetsim, fleetsim_in, root, scenario};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn shipped() -> Vec<String> {
    corpus("scenarios")
        .iter()
        .map(|p| format!("scenarios/{}", p.file_name().unwrap().to_string_lossy()))
        .collect()
}

#[test]
fn shipped_scenarios_meet_their_expectations() {
    let files = shipped();
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let run = fleetsim(&args).expect_code(0);
    for f in &files {
        assert!(
            run.stdout.contains(&format!("{f}: scenario=")),
            "{}",
            run.stdout
        );
    }
    let oks = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("  ok  "))
        .count();
    assert!(oks >= 15, "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    assert!(
        run.stdout.contains("assertions: all hold"),
        "{}",
        run.stdout
    );
}

#[test]
fn regressed_istio_release_fails_a_shipped_expectation_with_a_replay() {
    // The prediction on current Istio, regressed to the incident's release: the herd
    // comes back and the expectation names it, with the command that replays it.
    let set = "cluster.payments.istiod.version=\"1.15.0\"";
    let run = fleetsim(&[
        "check",
        "scenarios/incident-istio-current.toml",
        "--set",
        set,
        "--threads",
        "2",
    ])
    .expect_code(1);
    assert!(
        run.stdout.lines().any(
            |l| l.starts_with("  FAIL  cluster.payments: recovered == true")
                && l.contains("false in all 4 runs")
        ),
        "{}",
        run.stdout
    );
    let replay = "replay: fleetsim run scenarios/incident-istio-current.toml --seed 1 --set ";
    assert!(run.stdout.contains(replay), "{}", run.stdout);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);

    // The printed command reproduces the failure.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let replayed = fleetsim(&[
        "run",
        "scenarios/incident-istio-current.toml",
        "--seed",
        "1",
        "--set",
        set,
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    assert_eq!(replayed.json()["recovered"], false);
}

#[test]
fn malformed_expectations_exit_2_with_file_line_and_field() {
    let files = corpus("tests/bad-expect");
    assert!(files.len() >= 15, "only {} files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let rel = format!(
            "tests/bad-expect/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let expects = expectations(path);
        assert!(!expects.is_empty(), "{rel} has no `# expect: ` line");
        for cmd in ["validate", "check"] {
            let run = fleetsim(&[cmd, &rel]);
            let mut problems = Vec::new();
            if run.code != 2 {
                problems.push(format!("exit code {} (want 2)", run.code));
            }
            if run.stderr.contains("panicked") {
                problems.push("panicked".into());
            }
            if !run.stdout.is_empty() {
                problems.push("printed on stdout".into());
            }
            for e in &expects {
                let want = format!("{rel}{e}");
                if !run.stderr.contains(&want) {
                    problems.push(format!("missing: {want}"));
                }
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{cmd} {rel}:\n  {}\n--- stderr ---\n{}---",
                    problems.join("\n  "),
                    run.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every malformed scenario through `run` and `check` (not only `validate`): exit 2, the
/// file, line and field on stderr, no panic, and nothing written.
#[test]
fn every_bad_scenario_exits_2_through_run_and_check_and_writes_nothing() {
    let files = corpus("tests/bad-scenarios");
    assert!(files.len() >= 50, "only {} files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let abs = path.to_str().expect("UTF-8 path");
        let expects = expectations(path);
        for args in [
            vec!["run", abs],
            vec!["run", abs, "--out", "out", "--format", "json"],
            vec!["check", abs],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let run = fleetsim_in(dir.path(), &args);
            let mut problems = Vec::new();
            if run.code != 2 {
                problems.push(format!("exit code {} (want 2)", run.code));
            }
            if run.stderr.contains("panicked") {
                problems.push("panicked".into());
            }
            for e in &expects {
                let want = format!("{abs}{e}");
                if !run.stderr.contains(&want) {
                    problems.push(format!("missing: {want}"));
                }
            }
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            if !left.is_empty() {
                problems.push(format!(
                    "wrote {} entries in the working directory",
                    left.len()
                ));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{}:\n  {}\n--- stderr ---\n{}---",
                    args.join(" "),
                    problems.join("\n  "),
                    run.stderr
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases misbehaved:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn nothing_runs_when_any_input_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "[ca.pca]\n[cluster.a]\n").unwrap();
    let run = fleetsim_in(
        dir.path(),
        &[
            "check",
            scenario("healthy-baseline.toml").to_str().unwrap(),
            "plain.toml",
            "missing.toml",
        ],
    )
    .expect_code(2);
    assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);
    assert!(
        run.stderr
            .contains("plain.toml: no [expect] section: nothing to check"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("missing.toml: cannot read"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("check: 2 of 3 scenarios are invalid; nothing was run"),
        "{}",
        run.stderr
    );
    // A --set naming no scenario value, and flags out of range.
    let run = fleetsim(&[
        "check",
        "scenarios/healthy-baseline.toml",
        "--set",
        "expect.sedes=3",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    fleetsim(&["check", "scenarios/healthy-baseline.toml", "--threads", "0"]).expect_code(2);
    fleetsim(&["check"]).expect_code(2);
}

#[test]
fn set_can_tighten_an_expectation() {
    // Overrides reach [expect] too: a bound nobody can meet fails with exit 1.
    let run = fleetsim(&[
        "check",
        "scenarios/healthy-baseline.toml",
        "--set",
        "expect.assert=[\"time_to_recover_s <= 10m\"]",
        "--set",
        "expect.seeds=3",
    ])
    .expect_code(1);
    assert!(
        run.stdout.contains("  FAIL  time_to_recover_s <= 10m"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("seeds=1..3 "), "{}", run.stdout);
}
