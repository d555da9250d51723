//! Helpers to run the real binary in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the built `fleetsim` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fleetsim"))
}

/// The repository root (where `scenarios/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped scenario by file name.
pub fn scenario(name: &str) -> PathBuf {
    root().join("scenarios").join(name)
}

/// The result of one invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics, printing both streams in blocks, unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        if self.code != code {
            panic!(
                "expected exit code {code}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
                self.code, self.stdout, self.stderr
            );
        }
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\n--- stdout ---\n{}\n---",
                self.stdout
            )
        })
    }
}

/// Runs `fleetsim ARGS` with `dir` as the working directory.
pub fn fleetsim_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run fleetsim");
    Run::from(out)
}

/// Runs `fleetsim ARGS` in the repository root.
pub fn fleetsim(args: &[&str]) -> Run {
    fleetsim_in(&root(), args)
}

/// The first of `names` found as an executable file on `PATH`.
pub fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

/// A regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// An optional tool a test needs is missing: `check` (what is not checked) cannot run
/// because of `missing` (what to install). When `require_var` is set (`.ci/run` sets
/// it) the test fails; otherwise it is skipped with one line on stderr, written past
/// the test harness's capture so that `cargo test` shows it (nextest shows it through
/// `.config/nextest.toml`).
#[track_caller]
pub fn skip_unless_required(require_var: &str, check: &str, missing: &str) {
    if std::env::var_os(require_var).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{check}: {missing} ({require_var} is set, so a missing tool is a failure)");
    }
    use std::io::Write as _;
    let line =
        format!("SKIP: {check} skipped: {missing} (set {require_var}=1 to make this a failure)\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
