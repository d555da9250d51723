//! `fleetsim sweep` and `fleetsim merge` with the real binary: determinism across thread
//! counts, shards and resumes; the shipped strategies sweep; bad sweep sections.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, fleetsim, fleetsim_in, root, scenario};

fn small() -> PathBuf {
    root().join("tests/data/sweep-small.toml")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join(name).display()))
}

/// Panics with both texts in blocks unless they are equal.
#[track_caller]
fn assert_same(what: &str, a: &str, b: &str) {
    if a != b {
        panic!("{what} differ\n--- first ---\n{a}\n--- second ---\n{b}\n---");
    }
}

fn sweep(dir: &Path, extra: &[&str]) {
    let small = small();
    let mut args = vec![
        "sweep",
        small.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    fleetsim(&args).expect_code(0);
}

#[test]
fn outputs_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("t1"), tmp.path().join("t2"));
    sweep(&one, &["--threads", "1"]);
    sweep(&two, &["--threads", "2"]);
    for f in [
        "runs.csv",
        "curves.csv",
        "manifest.json",
        "failure_curve.svg",
    ] {
        assert_same(f, &read(&one, f), &read(&two, f));
    }
    let runs = read(&one, "runs.csv");
    assert_eq!(
        runs.lines().count(),
        1 + 24,
        "header + 2 x 3 points x 4 seeds"
    );
    assert!(!runs.contains("wall_s"));
    // (issue 9: the curve's separation of the strategies belonged to the old abstract
    // model; the thread-count independence above is what this test is about.)
    assert!(one.join("failure_curve.png").exists());
    assert!(!one.join("runs.csv.partial").exists());
}

#[test]
fn merged_shards_equal_the_unsharded_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    sweep(&t.join("whole"), &[]);
    sweep(&t.join("s0"), &["--shard", "0/2"]);
    sweep(&t.join("s1"), &["--shard", "1/2", "--threads", "1"]);
    assert!(!t.join("s0/curves.csv").exists(), "a shard has no curves");
    // Shards in any order.
    let dir = |p: &str| t.join(p).to_str().unwrap().to_string();
    fleetsim(&["merge", &dir("s1"), &dir("s0"), "--out", &dir("merged")]).expect_code(0);
    for f in [
        "runs.csv",
        "curves.csv",
        "manifest.json",
        "failure_curve.svg",
    ] {
        assert_same(f, &read(&t.join("whole"), f), &read(&t.join("merged"), f));
    }
    // A missing shard, a shard given twice, a shard of another sweep.
    let r = fleetsim(&["merge", &dir("s0"), "--out", &dir("m2")]).expect_code(2);
    assert!(r.stderr.contains("missing shards: 1/2"), "{}", r.stderr);
    let r = fleetsim(&["merge", &dir("s0"), &dir("s0"), "--out", &dir("m3")]).expect_code(2);
    assert!(r.stderr.contains("given twice"), "{}", r.stderr);
    sweep(&t.join("other"), &["--shard", "1/2", "--seeds", "3"]);
    let r = fleetsim(&["merge", &dir("s0"), &dir("other"), "--out", &dir("m4")]).expect_code(2);
    assert!(r.stderr.contains("differs in: seeds"), "{}", r.stderr);
}

#[test]
fn a_killed_sweep_resumes_to_the_same_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let small = small();
    let args = |dir: &str| -> Vec<String> {
        [
            "sweep",
            small.to_str().unwrap(),
            "--seeds",
            "100",
            "--out",
            t.join(dir).to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    // Interrupted: one thread, killed once the checkpoint holds 100 rows.
    let mut child = Command::new(bin())
        .args(args("resumed"))
        .args(["--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = t.join("resumed/runs.csv.partial");
    let started = Instant::now();
    loop {
        let rows = std::fs::read_to_string(&partial)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if rows > 100 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep finished before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !t.join("resumed/runs.csv").exists(),
        "killed before the end"
    );
    let checkpoint_rows = read(&t.join("resumed"), "runs.csv.partial").lines().count() - 1;
    assert!((100..600).contains(&checkpoint_rows));

    // A resume with other parameters is refused and leaves the checkpoint alone.
    let mut other = args("resumed");
    other[3] = "149".into();
    other.push("--resume".into());
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let r = fleetsim(&other).expect_code(2);
    assert!(
        r.stderr.contains("checkpoint is of another sweep") && r.stderr.contains("seeds"),
        "{}",
        r.stderr
    );

    let mut resume = args("resumed");
    resume.push("--resume".into());
    let resume: Vec<&str> = resume.iter().map(String::as_str).collect();
    let r = fleetsim(&resume).expect_code(0);
    let (ran, taken) = ran_and_taken(&r.stdout);
    assert!(taken as usize >= checkpoint_rows - 1, "{}", r.stdout);
    assert_eq!(ran + taken, 600, "{}", r.stdout);

    let whole = args("whole");
    let whole: Vec<&str> = whole.iter().map(String::as_str).collect();
    fleetsim(&whole).expect_code(0);
    for f in ["runs.csv", "curves.csv", "manifest.json"] {
        assert_same(f, &read(&t.join("whole"), f), &read(&t.join("resumed"), f));
    }
    // Resuming a finished sweep recomputes nothing and changes nothing.
    let r = fleetsim(&resume).expect_code(0);
    assert_eq!(ran_and_taken(&r.stdout), (0, 600), "{}", r.stdout);
    assert_same(
        "curves.csv",
        &read(&t.join("whole"), "curves.csv"),
        &read(&t.join("resumed"), "curves.csv"),
    );
}

/// From `ran N runs in ... ; M taken from the checkpoint`: (N, M).
fn ran_and_taken(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ran "))
        .unwrap_or_else(|| panic!("no `ran` line in\n{stdout}"));
    let ran = line.split(' ').nth(1).unwrap().parse().unwrap();
    let taken = line
        .split_once("; ")
        .map_or(0, |(_, t)| t.split(' ').next().unwrap().parse().unwrap());
    (ran, taken)
}

/// A failure curve point: (x, failure_p, failure_lo, failure_hi).
type CurvePoint = (f64, f64, f64, f64);

/// The shipped strategies sweep (sourced mechanisms, signer workers on x): the failure
/// probability does not rise with signer workers (beyond what the intervals allow), and
/// the strategies rank as docs/sweep.md says: pacings slower than the signer's rate help,
/// pacings faster than it (token bucket 5/s, AIMD from 5/s) prolong the herd.
#[test]
fn shipped_strategies_sweep_is_monotone_and_ranks_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let path = scenario("sweep-restart-strategies.toml");
    fleetsim(&[
        "sweep",
        path.to_str().unwrap(),
        "--seeds",
        "5",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    let curves = read(&out, "curves.csv");
    let mut r = csv::Reader::from_reader(curves.as_bytes());
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (cs, cx) = (col("strategy"), col("cluster.payments.signer.workers"));
    let (cp, clo, chi) = (col("failure_p"), col("failure_lo"), col("failure_hi"));
    let mut lines: Vec<(String, Vec<CurvePoint>)> = Vec::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let num = |c: usize| rec[c].parse::<f64>().unwrap();
        let p = (num(cx), num(cp), num(clo), num(chi));
        match lines.iter_mut().find(|(s, _)| s == &rec[cs]) {
            Some((_, v)) => v.push(p),
            None => lines.push((rec[cs].to_string(), vec![p])),
        }
    }
    assert_eq!(lines.len(), 5);
    for (s, pts) in &lines {
        for w in pts.windows(2) {
            let ((x0, p0, _, hi0), (x1, p1, lo1, _)) = (w[0], w[1]);
            assert!(x1 > x0);
            assert!(
                p1 <= p0 || lo1 <= hi0,
                "{s}: P(failure) rises from {p0} at {x0} workers to {p1} at {x1} beyond the intervals"
            );
        }
    }
    // The fewest signer workers from which a strategy stays at P(failure) <= 0.05.
    let needs = |name: &str| -> f64 {
        let pts = &lines.iter().find(|(s, _)| s == name).unwrap().1;
        let mut need = f64::INFINITY;
        for &(x, p, _, _) in pts.iter().rev() {
            if p > 0.05 {
                break;
            }
            need = x;
        }
        need
    };
    let ranking = [
        "batches",
        "all-at-once",
        "istiod-window",
        "token-bucket",
        "aimd",
    ]
    .map(needs);
    // docs/sweep.md quotes the 20-seed sweep (AIMD needs 12 there: 2 of 20 fail at 8);
    // over these 5 seeds:
    assert_eq!(ranking, [3.0, 3.0, 4.0, 6.0, 8.0], "signer workers needed");
}

fn bad_sweep(section: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(small()).unwrap();
    let base = &text[..text.find("[sweep]").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, format!("{base}{section}")).unwrap();
    (tmp, path)
}

#[track_caller]
fn expect_bad(section: &str, extra: &[&str], needles: &[&str]) {
    let (tmp, path) = bad_sweep(section);
    let mut args = vec!["sweep", "bad.toml"];
    args.extend_from_slice(extra);
    let r = fleetsim_in(tmp.path(), &args).expect_code(2);
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        !tmp.path().join("output").exists(),
        "nothing may run or be written for a bad sweep"
    );
    assert!(path.exists());
}

#[test]
fn bad_sweep_sections_exit_2_naming_file_line_and_field() {
    let grid = "[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\n";
    expect_bad(
        &format!("{grid}\"ca.pca.worker\" = [1, 2]\n"),
        &[],
        &[
            "bad.toml:",
            "sweep.grid.\"ca.pca.worker\"",
            "did you mean \"workers\"",
        ],
    );
    expect_bad(
        "[sweep]\nfailure = \"not recovered\"\ngrid = {}\n",
        &[],
        &["bad.toml:", "sweep.grid", "empty grid"],
    );
    expect_bad(
        &format!("{grid}\"ca.pca.workers\" = []\n"),
        &[],
        &["sweep.grid.\"ca.pca.workers\"", "no values"],
    );
    expect_bad(
        &format!("{grid}\"ca.pca.workers\" = [4, \"many\"]\n"),
        &[],
        &[
            "sweep.grid.\"ca.pca.workers\"",
            "value many",
            "expected an integer",
        ],
    );
    expect_bad(
        &format!("{grid}\"ca.pca.workers\" = [4, 0]\n"),
        &[],
        &["value 0", ">= 1"],
    );
    expect_bad(
        "[sweep]\nfailure = \"peak_crashloop_pod > 0\"\n[sweep.grid]\n\"ca.pca.workers\" = [4]\n",
        &[],
        &["sweep.failure", "does not parse", "peak_crashloop_pods"],
    );
    expect_bad(
        &format!("{grid}strategy = [\"batches\", \"all-at-onse\"]\n"),
        &[],
        &["unknown strategy \"all-at-onse\"", "all-at-once"],
    );
    expect_bad(
        &format!("{grid}\"ca.pca.workers\" = [4]\n"),
        &["--shard", "3/2"],
        &["--shard", "below the shard count"],
    );
    expect_bad(
        "[sweep]\nfailure = \"not recovered\"\nseed = 3\n[sweep.grid]\n\"ca.pca.workers\" = [4]\n",
        &[],
        &["sweep.seed", "unknown key"],
    );
    expect_bad(
        "[sweep]\nfailure = \"not recovered\"\nx = \"strategy\"\n[sweep.grid]\nstrategy = [\"batches\"]\n",
        &[],
        &["sweep.x", "numeric"],
    );
    expect_bad(
        "[strategies.fast]\n\"rollout.pacing\" = \"batches\"\n\"rollout.batch_size\" = 0\n[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\nstrategy = [\"fast\"]\n",
        &[],
        &["strategies.fast", "rollout.batch_size"],
    );
}
