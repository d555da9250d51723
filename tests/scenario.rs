//! `fleetsim validate` on the malformed corpus (`tests/bad-scenarios/`) and on the full
//! example: exit codes, file:line: field: message, and never a panic.

use std::path::Path;

use crate::util::{fleetsim, fleetsim_in, root};

/// The `# expect: ` lines at the top of a corpus file (read as bytes: some files are
/// deliberately not UTF-8 further down).
pub(crate) fn expectations(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read corpus file");
    String::from_utf8_lossy(&bytes)
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_bad_scenario_exits_2_with_file_line_and_field() {
    let dir = root().join("tests/bad-scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/bad-scenarios")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} bad scenarios", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let rel = format!(
            "tests/bad-scenarios/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let expects = expectations(path);
        assert!(!expects.is_empty(), "{rel} has no `# expect: ` line");
        let run = fleetsim(&["validate", &rel]);
        let mut problems = Vec::new();
        if run.code != 2 {
            problems.push(format!("exit code {} (want 2)", run.code));
        }
        if run.stderr.contains("panicked") || run.stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        if !run.stdout.is_empty() {
            problems.push("printed on stdout".into());
        }
        for e in &expects {
            // Each expectation starts at the position (`:LINE:` or `:LINE:COL:`, or `: `
            // for the file as a whole), so file, line and field are all checked.
            assert!(e.starts_with(':'), "{rel}: expectation must start with ':'");
            let want = format!("{rel}{e}");
            if !run.stderr.contains(&want) {
                problems.push(format!("missing: {want}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{rel}:\n  {}\n--- stderr ---\n{}---",
                problems.join("\n  "),
                run.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad scenarios misbehaved:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn full_example_is_valid() {
    let run = fleetsim(&["validate", "tests/data/full.toml"]).expect_code(0);
    assert!(
        run.stdout
            .starts_with("ok tests/data/full.toml (14 clusters, 1263 pods, hash "),
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn good_and_bad_files_together_exit_2_and_report_both() {
    let run = fleetsim(&[
        "validate",
        "tests/data/full.toml",
        "tests/bad-scenarios/zero-workers.toml",
    ])
    .expect_code(2);
    assert!(
        run.stdout.starts_with("ok tests/data/full.toml"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "tests/bad-scenarios/zero-workers.toml:3: ca.pca.workers: must be >= 1, got 0"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn set_overrides_apply_and_their_errors_name_the_set() {
    let ok = fleetsim(&[
        "validate",
        "tests/data/full.toml",
        "--set",
        "cluster.payments.istiod.replicas=1",
        "--set",
        "ca.pca-east.service_mean=250ms",
    ])
    .expect_code(0);
    let base = fleetsim(&["validate", "tests/data/full.toml"]).expect_code(0);
    assert!(
        ok.stdout.contains("(14 clusters, 1224 pods, hash "),
        "{}",
        ok.stdout
    );
    assert_ne!(ok.stdout, base.stdout, "the hash covers the overrides");

    let bad = fleetsim(&[
        "validate",
        "tests/data/full.toml",
        "--set",
        "cluster.payments.istiod.replica=1",
    ])
    .expect_code(2);
    assert!(
        bad.stderr.contains(
            "tests/data/full.toml (--set cluster.payments.istiod.replica=1): cluster.payments.istiod.replica: unknown field; did you mean \"replicas\"?"
        ),
        "{}",
        bad.stderr
    );
    let bad = fleetsim(&[
        "validate",
        "tests/data/full.toml",
        "--set",
        "no-equals-sign",
    ])
    .expect_code(2);
    assert!(bad.stderr.contains("expected PATH=VALUE"), "{}", bad.stderr);
}

#[test]
fn unreadable_inputs_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = fleetsim_in(dir.path(), &["validate", "missing.toml", "."]).expect_code(2);
    assert!(
        run.stderr.contains("missing.toml: cannot read"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(".: is a directory"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    fleetsim(&["validate"]).expect_code(2);
}

/// Writes `text` as `t.toml` in a temporary directory and validates it there.
fn validate_text(text: &str) -> (tempfile::TempDir, crate::util::Run) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), text).unwrap();
    let run = fleetsim_in(dir.path(), &["validate", "t.toml"]);
    (dir, run)
}

const FLEET: &str = "[ca.pca]\n[cluster.a]\n";

/// Hardening row 1: 20 000 nested parentheses or 30 000 `not`s in any predicate of a
/// scenario are an error naming the field, quickly — not a stack overflow.
#[test]
fn predicate_deep_nesting_is_an_error_not_a_stack_overflow() {
    let parens = format!("{}recovered{}", "(".repeat(20_000), ")".repeat(20_000));
    let nots = format!("{}recovered", "not ".repeat(30_000));
    let conditions = [
        format!(
            "{}crashloop_pods > 1{}",
            "(".repeat(20_000),
            ")".repeat(20_000)
        ),
        format!("{}crashloop_pods > 1", "not ".repeat(30_000)),
    ];
    let mut cases = Vec::new();
    for p in [&parens, &nots] {
        cases.push((
            format!("{FLEET}[expect]\nassert = [\"{p}\"]\n"),
            "t.toml:4: expect.assert[0]: ",
        ));
    }
    for p in [&parens, &nots] {
        cases.push((
            format!(
                "{FLEET}[sweep]\nfailure = \"{p}\"\n[sweep.grid]\n\"ca.pca.workers\" = [1, 2]\n"
            ),
            "t.toml:4: sweep.failure: ",
        ));
    }
    for c in &conditions {
        cases.push((
            format!("{FLEET}[intervention.x]\naction = \"pause_rollout\"\nwhen = \"{c}\"\n"),
            "t.toml:5: intervention.x.when: ",
        ));
    }
    for (text, want) in cases {
        let started = std::time::Instant::now();
        let (_dir, run) = validate_text(&text);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(want), "{}", run.stderr);
        assert!(
            run.stderr.contains("nested deeper than 64 levels"),
            "{}",
            run.stderr
        );
        assert!(
            started.elapsed().as_secs_f64() < 5.0,
            "took {:?}",
            started.elapsed()
        );
    }
}

/// Hardening row 2: a non-ASCII character (a letter, a no-break space) in a predicate is
/// an error with its column, not a panic.
#[test]
fn predicate_non_ascii_is_an_error_not_a_panic() {
    for (text, want) in [
        (
            format!("{FLEET}[expect]\nassert = [\"recovered == trueÅ\"]\n"),
            "t.toml:4: expect.assert[0]: \"recovered == trueÅ\": unexpected character 'Å' (column 18)",
        ),
        (
            format!("{FLEET}[expect]\nassert = [\"recovered\u{a0}== true\"]\n"),
            "unexpected character '\\u{a0}' (column 10)",
        ),
        (
            format!("{FLEET}[intervention.x]\naction = \"pause_rollout\"\nwhen = \"crashloop_pods\u{a0}> 1\"\n"),
            "t.toml:5: intervention.x.when: cannot parse condition \"crashloop_pods\\u{a0}> 1\": unexpected character '\\u{a0}' (column 15)",
        ),
        (
            format!("{FLEET}[intervention.x]\naction = \"pause_rollout\"\nwhen = \"Åcrashloop_pods > 1\"\n"),
            "unexpected character 'Å' (column 1)",
        ),
    ] {
        let (_dir, run) = validate_text(&text);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(run.stderr.contains(want), "want {want}\n{}", run.stderr);
    }
}
