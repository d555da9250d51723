//! The promises of issue 11 held under attack, one test per row, named after what it
//! guards, with the real binary: bad input exits 2 with a clear one-line message within
//! seconds, never a panic, a hang, an out-of-memory abort or a half-written output; an
//! output folder holds the previous complete set or the new one after a kill at any
//! moment; checkpoints and shards are tamper-evident; budgets refuse up front.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, fleetsim, fleetsim_in, root, scenario, Run};

/// The shipped strategies sweep (one cluster of 640 pods; a run takes well under 1 s).
/// A run that takes seconds (the incident), so a kill can land mid-run.
fn long() -> String {
    scenario("incident-ca-herd.toml")
        .to_str()
        .unwrap()
        .to_string()
}

/// The strategies sweep of the previous model (a USL CA behind a token bucket): the
/// attacks of issue 11 were found on it, and its CA keys are what rows 6 and 14 use.
fn s() -> String {
    root()
        .join("tests/data/sweep-usl-strategies.toml")
        .to_str()
        .unwrap()
        .to_string()
}

fn small_sweep() -> PathBuf {
    root().join("tests/data/sweep-small.toml")
}

/// Asserts exit 2, no panic, a message with every needle, and returns the run.
#[track_caller]
fn refused(r: Run, needles: &[&str]) -> Run {
    let r = r.expect_code(2);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "missing {n:?} in\n{}", r.stderr);
    }
    r
}

/// Entries of `dir` (names), sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A fleet of `count` clusters of 2 pods each.
fn fleet(count: u32, horizon: &str, sample: &str, extra: &str) -> String {
    format!(
        r#"[scenario]
horizon = "{horizon}"
sample_interval = "{sample}"
[ca.pca]
workers = 8
[cluster.c]
count = {count}
ca = "pca"
[cluster.c.node_group.apps]
nodes = 1
max_pods = 58
[cluster.c.workload.w0]
replicas = 2
{extra}"#
    )
}

/// Runs the binary in `dir` to its end and returns its exit code, its standard error and
/// its peak resident memory in bytes (`wait4`'s `ru_maxrss`, of this child alone).
// The child is reaped by `wait4` (which reports its peak RSS), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn peak_rss(dir: &Path, args: &[&str]) -> (i32, String, u64) {
    let err = dir.join("stderr.txt");
    let child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; `usage` is a valid, zeroed out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    (code, stderr, usage.ru_maxrss as u64 * 1024)
}

/// Row 4: a valid fleet whose time series does not fit in memory is streamed: `run`
/// writes `timeseries.csv` as it samples and holds only the fleet rows, so 1 000
/// clusters sampled every second (600 000 rows, which held took over 250 MB) run in a
/// fraction of that, with every row written and the set put in place whole.
#[test]
fn a_time_series_too_big_to_hold_is_streamed_to_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("big.toml");
    std::fs::write(&f, fleet(1000, "10m", "1s", "")).unwrap();
    let f = f.to_str().unwrap();
    let (code, stderr, rss) = peak_rss(
        tmp.path(),
        &["run", f, "--out", "o", "--max-memory", "96MiB"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        rss < 96 << 20,
        "peak RSS {} MiB for a streamed time series",
        rss >> 20
    );
    let csv = std::fs::read_to_string(tmp.path().join("o/timeseries.csv")).unwrap();
    // A header, then 601 sample times of 1 000 clusters and the fleet row.
    assert_eq!(csv.lines().count(), 1 + 601 * 1001);
    let last = csv.lines().last().unwrap();
    assert!(last.starts_with("600,*,"), "{last}");
    assert_eq!(
        entries(&tmp.path().join("o")),
        [
            ".fleetsim-output",
            "summary.json",
            "timeline.png",
            "timeline.svg",
            "timeseries.csv"
        ]
    );
    // No staging folder is left beside it.
    let left = entries(tmp.path());
    assert!(!left.iter().any(|e| e.contains(".tmp-")), "{left:?}");
}

/// Row 4, the other half: what still does not fit is refused before it runs, naming the
/// budget and how to raise it: the whole time series held by `--openmetrics`, and a run
/// over a small budget.
#[test]
fn a_run_over_the_memory_budget_is_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("big.toml");
    std::fs::write(&f, fleet(10_000, "1h", "1s", "")).unwrap();
    let f = f.to_str().unwrap();
    let t0 = Instant::now();
    let r = refused(
        fleetsim_in(
            tmp.path(),
            &["run", f, "--out", "o", "--openmetrics", "o.txt"],
        ),
        &["memory budget of 4 GiB", "--max-memory", "sample_interval"],
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!tmp.path().join("o").exists());
    // Streamed, it is within the default budget: validate says so.
    fleetsim(&["validate", f]).expect_code(0);
    // The flag names itself when it is the budget.
    refused(
        fleetsim_in(
            tmp.path(),
            &["run", f, "--max-memory", "16MiB", "--out", "o"],
        ),
        &["raise --max-memory"],
    );
    assert!(!tmp.path().join("o").exists());
    refused(
        fleetsim(&["run", &s(), "--max-memory", "4 parsecs"]),
        &["--max-memory", "unknown size unit"],
    );
}

/// Row 5: a sweep no longer holds every grid point's scenario: each is built when its
/// runs start (one per thread), so 400 points of 500 clusters (200 000 cluster
/// specifications, ~130 MB held) run in flat memory.
#[test]
fn a_sweep_builds_each_point_when_it_runs_in_flat_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let values: Vec<String> = (1..=400).map(|i| i.to_string()).collect();
    let grid = format!(
        "[sweep]\nseeds = 1\nfailure = \"not recovered\"\n[sweep.grid]\n\"ca.pca.rate_limit_per_s\" = [{}]\n",
        values.join(", ")
    );
    let f = tmp.path().join("grid.toml");
    std::fs::write(&f, fleet(500, "1s", "1s", &grid)).unwrap();
    let f = f.to_str().unwrap();
    fleetsim(&["validate", f]).expect_code(0);
    let (code, stderr, rss) = peak_rss(tmp.path(), &["sweep", f, "--out", "o", "--threads", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        rss < 96 << 20,
        "peak RSS {} MiB for a sweep of 400 points x 500 clusters",
        rss >> 20
    );
    let runs = std::fs::read_to_string(tmp.path().join("o/runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 401);
}

/// Row 6: a CA queue that never moves (no worker may start for the whole run) under
/// 1 000 requests/s that each give up after 10 ms: the slots of the 3.6 M requests that
/// left are freed as they go, so `ca` stays within a 16 MiB budget that it enforces while
/// running (held, the slots alone would take ~170 MB and the run would be stopped).
#[test]
fn ca_slots_of_requests_that_left_a_queue_that_does_not_move_are_freed() {
    let r = fleetsim(&[
        "ca",
        "--arrival-rate",
        "1000",
        "--workers",
        "1",
        "--service-mean",
        "100ms",
        "--timeout",
        "10ms",
        "--patience-dist",
        "exponential",
        "--capacity-dip",
        "0s,1h,0",
        "--horizon",
        "1h",
        "--max-memory",
        "16MiB",
        "--format",
        "json",
    ])
    .expect_code(0);
    let j = r.json();
    // The whole horizon ran (not stopped by the memory budget), every request left.
    assert_eq!(j["stop"], "horizon", "{j}");
    let (arrivals, abandoned) = (
        j["arrivals"].as_u64().unwrap(),
        j["abandoned"].as_u64().unwrap(),
    );
    assert!(arrivals > 3_000_000, "{j}");
    assert!(arrivals - abandoned < 100, "{j}");
    assert_eq!(j["served"], 0, "{j}");
}

/// Row 6: a CA rate limit that admits less than one request over the horizon (every CSR
/// would wait, and be retried, until the end) is refused.
#[test]
fn a_ca_rate_limit_that_admits_no_request_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = refused(
        fleetsim_in(
            tmp.path(),
            &[
                "run",
                &s(),
                "--set",
                "scenario.horizon=30d",
                "--set",
                "ca.pca-payments.rate_limit_per_s=5e-324",
            ],
        ),
        &[
            "ca.pca-payments.rate_limit_per_s",
            "5e-324/s admits less than one request",
        ],
    );
    assert!(r.stderr.len() < 600, "{}", r.stderr);
    assert!(entries(tmp.path()).is_empty());
}

/// Row 7: a file that never ends is refused by a read limit, not a stat.
#[test]
fn validate_reads_an_endless_stream_only_up_to_the_limit() {
    let t0 = Instant::now();
    refused(
        fleetsim(&["validate", "/dev/zero"]),
        &["/dev/zero", "scenario files are limited"],
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
}

/// Row 9: `-o` naming a symlink writes through the link (it stays a link); a character
/// device is written through, never replaced; a folder or a device as `run --out` is
/// refused before the run.
#[cfg(unix)]
#[test]
fn an_output_that_is_a_symlink_or_a_device_is_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let real = t.join("real.html");
    std::fs::write(&real, "old").unwrap();
    std::os::unix::fs::symlink(&real, t.join("link.html")).unwrap();
    fleetsim_in(t, &["report", &s(), "--seeds", "1", "-o", "link.html"]).expect_code(0);
    let m = std::fs::symlink_metadata(t.join("link.html")).unwrap();
    assert!(m.file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(&real).unwrap().contains("<html"));

    // A device (as root, a fresh one made with mknod; else /dev/null itself).
    let dev = if unsafe { libc::geteuid() } == 0 {
        let p = t.join("null");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; makes the character device 1:3 (/dev/null).
        let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "mknod");
        p
    } else {
        PathBuf::from("/dev/null")
    };
    let r = fleetsim_in(
        t,
        &["report", &s(), "--seeds", "1", "-o", dev.to_str().unwrap()],
    )
    .expect_code(0);
    assert!(!r.stderr.contains("panicked"));
    let m = std::fs::metadata(&dev).unwrap();
    assert!(
        m.file_type().is_char_device(),
        "{} was replaced",
        dev.display()
    );
    assert!(!t.join("null-files").exists() && !Path::new("/dev/null-files").exists());

    refused(
        fleetsim_in(t, &["report", &s(), "--seeds", "1", "-o", "."]),
        &["-o needs a file name"],
    );
    // `run --out` a device or a file: refused at once, before the run.
    let t0 = Instant::now();
    refused(
        fleetsim_in(t, &["run", &s(), "--out", dev.to_str().unwrap()]),
        &["a character device, not a folder"],
    );
    refused(
        fleetsim_in(t, &["run", &s(), "--out", "real.html"]),
        &["a regular file, not a folder"],
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    let m = std::fs::metadata(&dev).unwrap();
    assert!(m.file_type().is_char_device());
}

/// Row 10: a scenario name cannot take the default output folder out of `output/`.
#[test]
fn scenario_names_cannot_leave_the_output_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let inner = tmp.path().join("a/b/c");
    std::fs::create_dir_all(&inner).unwrap();
    for name in ["../../../escaped", "x/y", ".hidden", "..", "a\\b"] {
        let set = format!("scenario.name={name}");
        refused(
            fleetsim_in(&inner, &["run", &s(), "--set", &set]),
            &["scenario.name", "names the output folder"],
        );
    }
    assert!(entries(&inner).is_empty());
    assert!(!tmp.path().join("escaped").exists());
}

/// The files of a `run` output folder, with the marker.
const RUN_SET: [&str; 5] = [
    ".fleetsim-output",
    "summary.json",
    "timeline.png",
    "timeline.svg",
    "timeseries.csv",
];

/// The outputs of `run SCENARIO --seed SEED` (time series and figure), as a reference.
fn reference_of(scenario: &str, dir: &Path, seed: &str) -> (String, Vec<u8>) {
    let out = dir.join(format!("ref-{seed}"));
    fleetsim(&[
        "run",
        scenario,
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    (
        std::fs::read_to_string(out.join("timeseries.csv")).unwrap(),
        std::fs::read(out.join("timeline.svg")).unwrap(),
    )
}

/// Row 11: after `kill -9` at any moment of a run, its folder holds the previous
/// complete set or the new complete set, never a mix; the next run removes what the
/// killed one left.
#[test]
fn a_killed_run_leaves_the_previous_or_the_new_set() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let old = reference_of(&long(), t, "1");
    let new = reference_of(&long(), t, "2");
    let dir = t.join("k");
    let dir_s = dir.to_str().unwrap().to_string();
    fleetsim(&["run", &long(), "--seed", "1", "--out", &dir_s]).expect_code(0);
    let mut seen = (0, 0);
    for i in 0..16u64 {
        let mut child = Command::new(bin())
            .args(["run", &long(), "--seed", "2", "--out", &dir_s])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + 60 * i));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(entries(&dir), RUN_SET, "kill {i}: not a complete set");
        let ts = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
        let svg = std::fs::read(dir.join("timeline.svg")).unwrap();
        let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        if ts == old.0 {
            assert!(
                svg == old.1 && summary.contains("\"seed\": 1,"),
                "kill {i}: a mix"
            );
            seen.0 += 1;
        } else {
            assert!(
                ts == new.0 && svg == new.1 && summary.contains("\"seed\": 2,"),
                "kill {i}: neither the old nor the new set"
            );
            seen.1 += 1;
            // Back to the old set for the next kill.
            fleetsim(&["run", &long(), "--seed", "1", "--out", &dir_s]).expect_code(0);
        }
    }
    assert!(seen.0 > 0, "never killed before the end: {seen:?}");
    fleetsim(&["run", &long(), "--seed", "2", "--out", &dir_s]).expect_code(0);
    let left: Vec<String> = entries(t)
        .into_iter()
        .filter(|n| n.starts_with(".k."))
        .collect();
    assert_eq!(left, [".k.lock"], "stale temporaries left");
}

/// Row 12: a full disk (here: a file size limit, EFBIG) while writing a set leaves the
/// previous set whole, and no temporaries.
#[cfg(target_os = "linux")]
#[test]
fn a_write_that_fails_midway_leaves_the_previous_set() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let dir = t.join("o");
    let dir_s = dir.to_str().unwrap().to_string();
    fleetsim(&["run", &s(), "--seed", "1", "--out", &dir_s]).expect_code(0);
    let before = std::fs::read(dir.join("timeline.png")).unwrap();
    let limited = |args: &[&str]| {
        let mut c = Command::new(bin());
        c.args(args).current_dir(t);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: 64 << 10,
                    rlim_max: 64 << 10,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                Ok(())
            });
        }
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = limited(&["run", &s(), "--seed", "2", "--out", &dir_s]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(entries(&dir), RUN_SET);
    assert_eq!(std::fs::read(dir.join("timeline.png")).unwrap(), before);
    assert_eq!(
        entries(t)
            .into_iter()
            .filter(|n| n.contains(".tmp-"))
            .count(),
        0,
        "temporaries left"
    );
    // `report`: its CSVs are not left without the page, nor the page without them.
    fleetsim_in(t, &["report", &s(), "--seeds", "1", "-o", "r.html"]).expect_code(0);
    let page = std::fs::read(t.join("r.html")).unwrap();
    let csvs = entries(&t.join("r-files"));
    let (code, stderr) = limited(&["report", &s(), "--seeds", "2", "-o", "r.html"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read(t.join("r.html")).unwrap(), page);
    assert_eq!(entries(&t.join("r-files")), csvs);
    assert_eq!(
        entries(t)
            .into_iter()
            .filter(|n| n.contains(".tmp-"))
            .count(),
        0,
        "temporaries left"
    );
}

/// Row 13: a second writer of an output folder (a sweep and a `--resume` on it at the
/// same time) fails at once, naming the lock, and the first one's outputs are whole.
#[test]
fn an_output_folder_has_one_writer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cc");
    let small = small_sweep();
    let args = [
        "sweep",
        small.to_str().unwrap(),
        "--seeds",
        "30",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut first = Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !out.join("runs.csv.partial").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the sweep did not start"
        );
        assert!(first.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut second: Vec<&str> = args.to_vec();
    second.push("--resume");
    let r = refused(fleetsim(&second), &["another fleetsim process", ".cc.lock"]);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(first.wait().unwrap().success());
    // Whole and consistent: the resume of the finished sweep takes every row.
    let r = fleetsim(&second).expect_code(0);
    assert!(r.stdout.contains("ran 0 runs"), "{}", r.stdout);
}

/// Row 14: grid values that are the same number (`1` and `1.0`) are refused up front,
/// by `validate` and `sweep`, before anything runs.
#[test]
fn grid_values_that_are_the_same_number_are_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let set = "sweep.grid.\"ca.pca-payments.rate_limit_per_s\"=[1, 1.0]";
    let s = s();
    for args in [
        vec!["validate", &s, "--set", set],
        vec!["sweep", &s, "--set", set, "--threads", "1"],
    ] {
        refused(
            fleetsim_in(tmp.path(), &args),
            &["rate_limit_per_s", "is the same number as 1"],
        );
    }
    assert!(entries(tmp.path()).is_empty());
}

/// Edits field `col` of data line `line` (1-based, after the header) of a CSV file.
fn edit_csv(path: &Path, line: usize, col: &str, value: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let i = header.iter().position(|h| *h == col).unwrap();
    let mut fields: Vec<String> = lines[line].split(',').map(String::from).collect();
    // A figure changed: to `value`, or from it.
    fields[i] = if fields[i] == value {
        format!("{value}1")
    } else {
        value.to_string()
    };
    lines[line] = fields.join(",");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Row 15: an edited figure in a checkpoint or a shard is refused by `--resume` and
/// `merge`, naming the line and the checksum.
#[test]
fn edited_checkpoint_and_shard_rows_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let small = small_sweep();
    let small = small.to_str().unwrap();
    let dir = |n: &str| t.join(n).to_str().unwrap().to_string();
    // A checkpoint: a finished sweep's runs file made partial again.
    fleetsim(&["sweep", small, "--out", &dir("a")]).expect_code(0);
    std::fs::rename(t.join("a/runs.csv"), t.join("a/runs.csv.partial")).unwrap();
    for (col, value) in [("failed", "1"), ("trace_hash", "0000000000000000")] {
        let p = t.join("a/runs.csv.partial");
        let keep = std::fs::read(&p).unwrap();
        edit_csv(&p, 3, col, value);
        refused(
            fleetsim(&["sweep", small, "--out", &dir("a"), "--resume"]),
            &["runs.csv.partial", "line 4", "checksum"],
        );
        std::fs::write(&p, keep).unwrap();
    }
    fleetsim(&["sweep", small, "--out", &dir("a"), "--resume"]).expect_code(0);
    // Shards.
    for i in 0..2 {
        fleetsim(&[
            "sweep",
            small,
            "--shard",
            &format!("{i}/2"),
            "--out",
            &dir(&format!("s{i}")),
        ])
        .expect_code(0);
    }
    edit_csv(&t.join("s1/runs.csv"), 2, "time_to_recover_s", "1");
    refused(
        fleetsim(&["merge", &dir("s0"), &dir("s1"), "--out", &dir("m")]),
        &["s1/runs.csv", "checksum"],
    );
}

/// Row 16: a run cut short by the event budget is never judged healthy: `check` refuses
/// to judge, naming the budget and the key that raises it.
#[test]
fn a_run_cut_by_the_event_budget_is_never_judged_healthy() {
    let r = refused(
        fleetsim(&["check", &s(), "--set", "scenario.max_events=1"]),
        &[
            "scenario.max_events",
            "cut short by the event budget",
            "raise scenario.max_events",
        ],
    );
    assert!(!r.stdout.contains("  ok  "), "{}", r.stdout);
    // A sweep counts every cut run as failed (`failed` = 1 in each row).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    fleetsim(&[
        "sweep",
        small_sweep().to_str().unwrap(),
        "--seeds",
        "1",
        "--set",
        "scenario.max_events=1",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let header: Vec<&str> = runs.lines().next().unwrap().split(',').collect();
    let failed = header.iter().position(|h| *h == "failed").unwrap();
    for line in runs.lines().skip(1) {
        assert_eq!(line.split(',').nth(failed), Some("1"), "{line}");
    }
}

/// Row 18: messages name the line and field once; a huge `--set` value is not echoed
/// whole; `--out FILE` fails before the run; an IO error is printed once.
#[test]
fn messages_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // An integer that overflows names its line and field.
    let f = t.join("big.toml");
    std::fs::write(&f, "[scenario]\nseed = 99999999999999999999999\n").unwrap();
    refused(
        fleetsim(&["validate", f.to_str().unwrap()]),
        &["big.toml:2", "scenario.seed", "out of range"],
    );
    // A nested key is reported at its own line, and a value from `--set` at the `--set`.
    let f = t.join("nest.toml");
    std::fs::write(
        &f,
        "[ca.pca]\n[cluster.x]\nca = \"pca\"\nistiod.node_group = \"nope\"\n",
    )
    .unwrap();
    refused(
        fleetsim(&["validate", f.to_str().unwrap()]),
        &["nest.toml:4: cluster.x.istiod.node_group: no node group named \"nope\""],
    );
    refused(
        fleetsim(&["validate", &s(), "--set", "cluster.payments.istiod.node_group=\"nope\""]),
        &["(--set cluster.payments.istiod.node_group=\"nope\"): cluster.payments.istiod.node_group"],
    );
    // `--out FILE` fails before the run.
    let file = t.join("file");
    std::fs::write(&file, "x").unwrap();
    let t0 = Instant::now();
    refused(
        fleetsim(&["run", &s(), "--out", file.to_str().unwrap()]),
        &["is a regular file, not a folder"],
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    // A 100 KB value is cut.
    let huge = format!("scenario.name={}", "x".repeat(100_000));
    let r = refused(
        fleetsim(&["validate", &s(), "--set", &huge]),
        &["scenario.name"],
    );
    assert!(r.stderr.len() < 2_000, "{} bytes of stderr", r.stderr.len());
    // A missing file: the OS error once.
    let r = refused(
        fleetsim(&["run", "no-such-file.toml"]),
        &["no-such-file.toml"],
    );
    assert_eq!(r.stderr.matches("os error 2").count(), 1, "{}", r.stderr);
    // Every error of a sweep on a missing shard printed once.
    let r = refused(
        fleetsim(&[
            "merge",
            t.join("none").to_str().unwrap(),
            "--out",
            t.join("m").to_str().unwrap(),
        ]),
        &["manifest.json"],
    );
    assert_eq!(r.stderr.matches("os error 2").count(), 1, "{}", r.stderr);
}

/// Row 19: `validate` runs the checks `sweep` runs before it starts: it is a CI gate.
#[test]
fn validate_refuses_what_sweep_refuses() {
    for set in [
        "sweep.failure=\"recoverd or\"",
        "sweep.grid.\"ca.pca-payments.rate_limit_per_s\"=[1, 1.0]",
    ] {
        let v = refused(fleetsim(&["validate", &s(), "--set", set]), &[]);
        let tmp = tempfile::tempdir().unwrap();
        let w = refused(
            fleetsim_in(tmp.path(), &["sweep", &s(), "--set", set, "--out", "o"]),
            &[],
        );
        let first = w
            .stderr
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("error: ");
        assert!(
            v.stderr.contains(first),
            "validate:\n{}\nsweep:\n{}",
            v.stderr,
            w.stderr
        );
    }
}

/// `check` judges `p(...) <= b` by the upper 95 % Wilson bound: 0 failures in 5 runs do
/// not show `<= 0.05`; it says so and how many seeds would.
#[test]
fn check_judges_probabilities_by_the_wilson_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("p.toml");
    let base = std::fs::read_to_string(small_sweep()).unwrap();
    let base = base.split("[sweep]").next().unwrap().to_string();
    std::fs::write(
        &f,
        format!("{base}[expect]\nassert = [\"p(upgrade_failed) <= 0.05 over 5 seeds\", \"p(upgrade_failed) <= 0.5 over 5 seeds\"]\n"),
    )
    .unwrap();
    let r = fleetsim(&["check", f.to_str().unwrap()]).expect_code(1);
    assert!(
        r.stdout.contains("95 % interval [0.000, 0.434]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("too wide to decide"), "{}", r.stdout);
    assert!(r.stdout.contains("about 73 seeds"), "{}", r.stdout);
    assert!(r.stdout.contains("1 FAILED"), "{}", r.stdout);
}
