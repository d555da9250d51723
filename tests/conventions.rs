//! What an installed command line is expected to have: `--version` with the commit it
//! was built from, shell completions that the shells accept (and that complete), a
//! manual page, and the shipped scenarios embedded (`fleetsim example`).
//!
//! zsh and fish are optional here: without them their syntax checks are skipped with a
//! line saying so; `FLEETSIM_REQUIRE_SHELLS=1` (`.ci/run` sets it, after installing
//! them) makes that a failure. bash is required.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{find_on_path, fleetsim, fleetsim_in, root, skip_unless_required};

const SUBCOMMANDS: &[&str] = &[
    "run",
    "ca",
    "validate",
    "check",
    "report",
    "sweep",
    "merge",
    "compare",
    "calibrate",
    "import",
    "example",
    "schema",
    "completions",
    "man",
];

#[test]
fn version_names_the_crate_version_and_the_git_commit() {
    let out = fleetsim(&["--version"]).expect_code(0).stdout;
    let expected_prefix = format!("fleetsim {} (", env!("CARGO_PKG_VERSION"));
    let commit = out
        .trim_end()
        .strip_prefix(&expected_prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {out:?}"));
    // In a git checkout (a developer's tree, CI's clone) it is HEAD; elsewhere "unknown".
    let head = Command::new("git")
        .args(["rev-parse", "--short=9", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match (head, std::env::var("FLEETSIM_GIT_COMMIT")) {
        (_, Ok(forced)) if !forced.is_empty() => assert_eq!(commit, forced.trim()),
        (Some(head), _) => assert_eq!(commit, head, "--version is not HEAD's commit"),
        (None, _) => assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        ),
    }
    assert_eq!(fleetsim(&["-V"]).expect_code(0).stdout, out);
}

fn completions(shell: &str) -> String {
    let script = fleetsim(&["completions", shell]).expect_code(0).stdout;
    for sub in SUBCOMMANDS {
        assert!(script.contains(sub), "{shell} completions lack {sub:?}");
    }
    script
}

/// `SHELL CHECK_ARG FILE` must exit 0 on the script written to FILE.
fn shell_accepts(shell: &Path, check_args: &[&str], script: &str, ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("fleetsim.{ext}"));
    std::fs::write(&file, script).unwrap();
    let out = Command::new(shell)
        .args(check_args)
        .arg(&file)
        .output()
        .expect("run the shell");
    assert!(
        out.status.success(),
        "{} {check_args:?} rejects the completion script:\n{}",
        shell.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bash() -> PathBuf {
    find_on_path(&["bash"]).expect("bash is on PATH")
}

#[test]
fn bash_completion_parses_and_completes_subcommands_and_flags() {
    let script = completions("bash");
    shell_accepts(&bash(), &["-n"], &script, "bash");
    // Load it and ask it, as bash's programmable completion does for `fleetsim ex<TAB>`
    // and `fleetsim sweep --sh<TAB>`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleetsim.bash");
    std::fs::write(&file, &script).unwrap();
    let ask = |words: &str| {
        let program = format!(
            "source {file}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             _fleetsim fleetsim \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file = file.display()
        );
        let out = Command::new(bash())
            .args(["-c", &program])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subs = ask("fleetsim ex");
    assert_eq!(subs.trim(), "example", "{subs}");
    let flags = ask("fleetsim sweep --sh");
    assert_eq!(flags.trim(), "--shard", "{flags}");
    let shells = ask("fleetsim completions ''");
    for s in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.lines().any(|l| l == s), "{s} not offered: {shells}");
    }
}

#[test]
fn zsh_and_fish_accept_their_completion_scripts() {
    for (shell, args, ext) in [("zsh", &["-n"][..], "zsh"), ("fish", &["-n"][..], "fish")] {
        let script = completions(shell);
        match find_on_path(&[shell]) {
            Some(bin) => shell_accepts(&bin, args, &script, ext),
            None => skip_unless_required(
                "FLEETSIM_REQUIRE_SHELLS",
                &format!("{shell} completion syntax check"),
                &format!("no {shell} on PATH (apt-get install {shell})"),
            ),
        }
    }
    // No shell to run these two here; they are generated and name every command.
    completions("elvish");
    completions("powershell");
}

#[test]
fn completions_for_an_unknown_shell_exit_2() {
    let run = fleetsim(&["completions", "tcsh"]).expect_code(2);
    assert!(run.stderr.contains("possible values"), "{}", run.stderr);
}

#[test]
fn the_manual_page_is_roff_and_covers_every_command() {
    let page = fleetsim(&["man"]).expect_code(0).stdout;
    assert!(page.contains(".TH fleetsim 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("fleetsim\\-{sub}(1)")),
            "fleetsim.1 does not list {sub}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let run = fleetsim_in(dir.path(), &["man", "--out-dir", "man1"]).expect_code(0);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path().join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|s| format!("fleetsim-{s}.1"))
        .chain(["fleetsim.1".to_string(), "fleetsim-ca-fit.1".to_string()])
        .collect();
    expected.sort();
    assert_eq!(pages, expected, "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("man1/fleetsim.1")).unwrap(),
        page
    );
    // groff (where installed) formats every page without a warning (-k: through
    // preconv, as man(1) does).
    if let Some(groff) = find_on_path(&["groff"]) {
        for p in &pages {
            let out = Command::new(&groff)
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .arg(dir.path().join("man1").join(p))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && err.is_empty(), "{p}: {err}");
        }
    }
}

/// The file stems of `scenarios/*.toml`, sorted.
fn shipped_scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn example_lists_every_shipped_scenario_with_its_description() {
    let list = fleetsim(&["example"]).expect_code(0).stdout;
    let listed: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, shipped_scenarios(), "{list}");
    for line in list.lines() {
        let (name, description) = line.split_once("  ").unwrap();
        let file =
            std::fs::read_to_string(root().join("scenarios").join(format!("{name}.toml"))).unwrap();
        let description = description.trim();
        assert!(!description.is_empty(), "{name} has no description");
        assert!(
            file.contains(&format!("description = \"{description}\"")),
            "{name}: {description:?}"
        );
    }
}

#[test]
fn each_example_is_its_scenario_file_byte_for_byte_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    for name in shipped_scenarios() {
        let printed = fleetsim(&["example", &name]).expect_code(0).stdout;
        let file =
            std::fs::read_to_string(root().join("scenarios").join(format!("{name}.toml"))).unwrap();
        assert!(
            printed == file,
            "fleetsim example {name} differs from the file"
        );
        // As a user would: write it out, then validate it.
        let copy = dir.path().join(format!("{name}.toml"));
        std::fs::write(&copy, &printed).unwrap();
        let run = fleetsim_in(dir.path(), &["validate", copy.to_str().unwrap()]).expect_code(0);
        assert!(run.stdout.starts_with("ok "), "{}", run.stdout);
    }
    // The `.toml` suffix is accepted too.
    let with_suffix = fleetsim(&["example", "incident-ca-herd.toml"]).expect_code(0);
    assert!(with_suffix.stdout.contains("[scenario]"));
}

#[test]
fn an_unknown_example_exits_2_with_the_list() {
    let run = fleetsim(&["example", "incident"]).expect_code(2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .starts_with("error: no example named \"incident\"; the examples are:\n"),
        "{}",
        run.stderr
    );
    for name in shipped_scenarios() {
        assert!(run.stderr.contains(&name), "{}", run.stderr);
    }
}
