//! Puts the git commit into `fleetsim --version` (`fleetsim 0.1.0 (1a2b3c4d5)`).
//!
//! Where the commit comes from, first found wins:
//! 1. `FLEETSIM_GIT_COMMIT` in the build's environment (the Docker build passes it as a
//!    build argument, since its context has no `.git`);
//! 2. `git rev-parse --short=9 HEAD` in a git checkout (`cargo install --path .`,
//!    `cargo install --git …`, a developer's tree);
//! 3. `.cargo_vcs_info.json`, which `cargo package` writes into a published crate;
//! 4. otherwise `unknown`.
//!
//! The script reruns when the checkout's HEAD moves (the files git keeps it in), not on
//! every edit, so it costs one rebuild per commit at most.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLEETSIM_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = from_env()
        .or_else(from_git)
        .or_else(from_vcs_info)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=FLEETSIM_GIT_COMMIT={commit}");
}

fn from_env() -> Option<String> {
    let c = std::env::var("FLEETSIM_GIT_COMMIT").ok()?;
    let c = c.trim();
    (!c.is_empty()).then(|| c.to_string())
}

/// Runs git in the package directory; `None` when git is missing or this is no checkout.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn from_git() -> Option<String> {
    let commit = git(&["rev-parse", "--short=9", "HEAD"])?;
    // Rerun when HEAD moves: HEAD itself (a branch switch), the branch's ref (a commit)
    // and packed-refs (where git may move that ref). Works in linked worktrees too,
    // whose HEAD lives under the main repository's .git.
    let mut watch: Vec<PathBuf> = Vec::new();
    let path = |p: &str| git(&["rev-parse", "--path-format=absolute", "--git-path", p]);
    watch.extend(path("HEAD").map(PathBuf::from));
    watch.extend(path("packed-refs").map(PathBuf::from));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.extend(path(&branch).map(PathBuf::from));
    }
    for p in watch.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    Some(commit)
}

fn from_vcs_info() -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let text = std::fs::read_to_string(Path::new(&dir).join(".cargo_vcs_info.json")).ok()?;
    // {"git": {"sha1": "<40 hex digits>"}, ...}: no JSON parser for one field.
    let after = &text[text.find("\"sha1\"")? + 6..];
    let start = after.find('"')? + 1;
    let sha: String = after[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (sha.len() >= 9).then(|| sha[..9].to_string())
}
