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
