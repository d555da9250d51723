//! `fleetsim ca`: validation against queueing theory, metastability, bad input.
//!
//! Validation tolerances come from each run's own batch-means standard error
//! (20 batches over the measurement window): |sim - theory| <= 4 stderr (plus a tiny
//! floor for quantities that are exactly zero). Each run must also be precise enough
//! (stderr <= 10 % of the theoretical value) for the comparison to mean something.

use crate::util::fleetsim;
use serde_json::Value;

fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["ca", "--format", "json"];
    all.extend_from_slice(args);
    fleetsim(&all).expect_code(0).json()
}

fn num(j: &Value, key: &str) -> f64 {
    j[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in\n{j:#}"))
}

/// Compares the simulated figures with the formula `model`, printing a table.
#[track_caller]
fn validate(args: &[&str], model: &str, metrics: &[&str]) {
    let j = run_json(args);
    let a = &j["analytic"];
    assert_eq!(a["model"], model, "analytic model for {args:?}:\n{j:#}");
    let mut failures = Vec::new();
    let mut table = format!("fleetsim ca {}\n", args.join(" "));
    for &m in metrics {
        let sim = num(&j, m);
        let theory = num(a, m);
        let se = num(&j["stderr"], m);
        let tol = (4.0 * se).max(1e-6 + 1e-3 * theory.abs());
        let z = (sim - theory) / se.max(1e-300);
        table += &format!(
            "  {m:<15} sim {sim:<12.6} theory {theory:<12.6} stderr {se:<10.3e} z {z:+.2}\n"
        );
        if (sim - theory).abs() > tol {
            failures.push(format!(
                "{m}: |{sim} - {theory}| = {:.3e} > 4 stderr = {:.3e}",
                (sim - theory).abs(),
                tol
            ));
        }
        if theory > 0.0 && se > 0.1 * theory {
            failures.push(format!("{m}: run too imprecise (stderr {se} vs {theory})"));
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{table}{}", failures.join("\n"));
}

const QUEUE: &[&str] = &["p_wait", "mean_wait_s", "mean_queue_len", "utilization"];
const IMPATIENT: &[&str] = &[
    "p_wait",
    "p_abandon",
    "mean_wait_s",
    "mean_queue_len",
    "utilization",
];

#[test]
fn mm1_matches_theory() {
    for (rate, horizon) in [("0.5", "200000s"), ("0.8", "400000s")] {
        validate(
            &[
                "--arrival-rate",
                rate,
                "--workers",
                "1",
                "--service-mean",
                "1s",
                "--horizon",
                horizon,
                "--seed",
                "11",
            ],
            "erlang_c",
            QUEUE,
        );
    }
}

#[test]
fn erlang_c_c4_matches_theory() {
    for (rate, horizon) in [("2", "100000s"), ("3.2", "200000s"), ("3.8", "800000s")] {
        validate(
            &[
                "--arrival-rate",
                rate,
                "--workers",
                "4",
                "--service-mean",
                "1s",
                "--horizon",
                horizon,
                "--seed",
                "12",
            ],
            "erlang_c",
            QUEUE,
        );
    }
}

#[test]
fn erlang_c_c16_matches_theory() {
    // Service 100 ms: the same model on another time scale.
    for (rate, horizon) in [("80", "10000s"), ("128", "10000s"), ("152", "20000s")] {
        validate(
            &[
                "--arrival-rate",
                rate,
                "--workers",
                "16",
                "--service-mean",
                "100ms",
                "--horizon",
                horizon,
                "--seed",
                "13",
            ],
            "erlang_c",
            QUEUE,
        );
    }
}

#[test]
fn erlang_a_matches_theory() {
    // Overloaded (rho = 1.25) and near critical (rho = 0.94), exponential patience.
    for (rate, workers, timeout) in [("5", "4", "1s"), ("15", "16", "2s")] {
        validate(
            &[
                "--arrival-rate",
                rate,
                "--workers",
                workers,
                "--service-mean",
                "1s",
                "--timeout",
                timeout,
                "--patience-dist",
                "exponential",
                "--on-timeout",
                "cancel",
                "--horizon",
                "60000s",
                "--seed",
                "14",
            ],
            "erlang_a",
            IMPATIENT,
        );
    }
}

#[test]
fn mmc_d_matches_theory() {
    for (rate, workers, timeout) in [("5", "4", "1s"), ("15", "16", "500ms")] {
        validate(
            &[
                "--arrival-rate",
                rate,
                "--workers",
                workers,
                "--service-mean",
                "1s",
                "--timeout",
                timeout,
                "--horizon",
                "60000s",
                "--seed",
                "15",
            ],
            "mmc_d",
            IMPATIENT,
        );
    }
}

#[test]
fn utilization_is_offered_load_for_any_service_distribution() {
    // Work conservation: without timeouts, busy fraction = lambda E[S] / c whatever the
    // distribution. Checks the lognormal mean/p99 fit and constant service.
    for dist in [
        &["--service-dist", "constant"][..],
        &["--service-dist", "lognormal", "--service-p99", "1s"][..],
    ] {
        let mut args = vec![
            "--arrival-rate",
            "6",
            "--workers",
            "4",
            "--service-mean",
            "500ms",
            "--horizon",
            "50000s",
        ];
        args.extend_from_slice(dist);
        let j = run_json(&args);
        assert!(j["analytic"].is_null(), "no formula for {dist:?}");
        let (u, se) = (num(&j, "utilization"), num(&j["stderr"], "utilization"));
        assert!(
            (u - 0.75).abs() <= 4.0 * se,
            "{dist:?}: utilization {u} ± {se}"
        );
        assert!((num(&j, "offered_load") - 0.75).abs() < 1e-9);
    }
}

#[test]
fn rate_limit_caps_throughput() {
    // 20/s offered, 10 tokens/s: the CA signs 10/s and the queue grows.
    let j = run_json(&[
        "--arrival-rate",
        "20",
        "--workers",
        "10",
        "--service-mean",
        "100ms",
        "--rate-limit",
        "10",
        "--horizon",
        "1000s",
    ]);
    assert!(j["analytic"].is_null());
    let u = num(&j, "utilization");
    assert!(
        (u - 0.1).abs() < 0.005,
        "utilization {u}, expected 10/s x 0.1 s / 10"
    );
    assert!(num(&j, "queue_end") > 8000.0, "{j:#}");
}

#[test]
fn analytic_only_where_its_assumptions_hold() {
    let base = [
        "--arrival-rate",
        "3",
        "--workers",
        "4",
        "--service-mean",
        "1s",
        "--horizon",
        "2000s",
    ];
    let model = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        run_json(&a)["analytic"]["model"].clone()
    };
    assert_eq!(model(&[]), "erlang_c");
    assert_eq!(model(&["--timeout", "1s"]), "mmc_d");
    assert_eq!(
        model(&["--timeout", "1s", "--patience-dist", "exponential"]),
        "erlang_a"
    );
    for extra in [
        &["--timeout", "1s", "--on-timeout", "keep"][..],
        &["--timeout", "1s", "--retries", "2"],
        &["--rate-limit", "100"],
        &["--usl", "0.01,0"],
        &["--capacity-dip", "100s,10s,0.5"],
        &["--service-dist", "constant"],
    ] {
        assert!(model(extra).is_null(), "{extra:?} must have no formula");
    }
    // Overloaded without patience: Erlang C has no steady state.
    let j = run_json(&[
        "--arrival-rate",
        "5",
        "--workers",
        "4",
        "--service-mean",
        "1s",
        "--horizon",
        "100s",
    ]);
    assert!(j["analytic"].is_null());
}

fn metastability(rate: &str, dip: bool) -> Value {
    // 10 workers x 100 ms = 100/s capacity; load = rate / 100. Keep, 3 attempts,
    // immediate retry, 1 s timeout; a 30 s dip to 30 % at 60 s.
    let mut args = vec![
        "--arrival-rate",
        rate,
        "--workers",
        "10",
        "--service-mean",
        "100ms",
        "--timeout",
        "1s",
        "--on-timeout",
        "keep",
        "--retries",
        "2",
        "--retry-backoff",
        "none",
        "--horizon",
        "10m",
        "--seed",
        "7",
    ];
    if dip {
        args.extend_from_slice(&["--capacity-dip", "60s,30s,0.3"]);
    }
    run_json(&args)
}

#[test]
fn metastable_collapse_above_one_over_attempts() {
    // Load 0.3 < 1/3: the backlog drains after the dip and goodput returns.
    let low = metastability("30", true);
    assert_eq!(low["metastable"], false, "{low:#}");
    assert!(num(&low, "goodput_per_s_end") > 27.0, "{low:#}");
    assert!(
        num(&low, "peak_queue") > 200.0 && num(&low, "retries") > 1000.0,
        "the dip did overload it: {low:#}"
    );
    // Load 0.6 > 1/3: three attempts per client keep the CA above capacity for good.
    let high = metastability("60", true);
    assert_eq!(high["metastable"], true, "{high:#}");
    assert!(num(&high, "goodput_per_s_end") < 30.0, "{high:#}");
    assert!(num(&high, "wasted_work_s") > 1000.0, "{high:#}");
    // The same load without the dip is healthy: the dip is the trigger, not the load.
    let control = metastability("60", false);
    assert_eq!(control["metastable"], false, "{control:#}");
    assert!(num(&control, "p_abandon") < 0.01, "{control:#}");
}

#[test]
fn agent_backoff_retries_and_counts() {
    let j = run_json(&[
        "--arrival-rate",
        "12",
        "--workers",
        "4",
        "--service-mean",
        "500ms",
        "--timeout",
        "1s",
        "--retries",
        "4",
        "--retry-backoff",
        "agent",
        "--horizon",
        "2000s",
    ]);
    let (req, arr, ret) = (num(&j, "requests"), num(&j, "arrivals"), num(&j, "retries"));
    assert!(ret > 0.0 && (req - arr - ret).abs() <= 50.0, "{j:#}");
    assert!(num(&j, "clients_failed") > 0.0 && num(&j, "clients_failed") < arr);
    // Under cancel nothing is wasted.
    assert_eq!(num(&j, "wasted_work_s"), 0.0);
}

#[test]
fn same_seed_same_run_and_text_starts_with_seed() {
    let args = [
        "--arrival-rate",
        "5",
        "--workers",
        "4",
        "--service-mean",
        "1s",
        "--timeout",
        "2s",
        "--on-timeout",
        "keep",
        "--retries",
        "3",
        "--horizon",
        "3000s",
        "--seed",
        "99",
    ];
    let strip = |mut j: Value| {
        j.as_object_mut().unwrap().remove("wall_s");
        j
    };
    let a = strip(run_json(&args));
    let b = strip(run_json(&args));
    assert_eq!(a, b);
    let mut other = args.to_vec();
    *other.last_mut().unwrap() = "100";
    assert_ne!(a["trace_hash"], strip(run_json(&other))["trace_hash"]);
    let mut text = vec!["ca"];
    text.extend_from_slice(&args);
    let t = fleetsim(&text).expect_code(0);
    assert!(t.stdout.starts_with("seed=99\n"), "{}", t.stdout);
    assert!(t.stdout.contains("metastable"));
}

#[test]
fn bad_flags_exit_2_naming_flag_and_value() {
    let ok = [
        "--arrival-rate",
        "1",
        "--workers",
        "1",
        "--service-mean",
        "1s",
        "--horizon",
        "10s",
    ];
    let cases: &[(&[&str], &[&str])] = &[
        (&["--arrival-rate", "-5"], &["--arrival-rate", "-5"]),
        (&["--arrival-rate", "abc"], &["--arrival-rate", "abc"]),
        (&["--workers", "0"], &["--workers", "0"]),
        (&["--service-mean", "10"], &["--service-mean", "10"]),
        (&["--service-mean", "-1s"], &["--service-mean", "-1s"]),
        (&["--service-mean", "0s"], &["--service-mean", "0s"]),
        (&["--timeout", "soon"], &["--timeout", "soon"]),
        (
            &["--service-dist", "lognormal", "--service-p99", "500ms"],
            &["--service-p99", "500ms"],
        ),
        (&["--service-dist", "lognormal"], &["--service-p99"]),
        (&["--service-dist", "gamma"], &["--service-dist", "gamma"]),
        (
            &["--capacity-dip", "10s,5s,1.5"],
            &["--capacity-dip", "1.5"],
        ),
        (&["--capacity-dip", "10s,5s"], &["--capacity-dip", "10s,5s"]),
        (&["--capacity-dip", "x,5s,0.5"], &["--capacity-dip", "x"]),
        (&["--usl", "-0.1,0"], &["--usl", "-0.1"]),
        (&["--rate-limit", "0"], &["--rate-limit", "0"]),
        (&["--retries", "-1"], &["--retries", "-1"]),
        (&["--retries", "2"], &["--retries", "2", "--timeout"]),
        (&["--warmup", "20s"], &["--warmup", "20s"]),
        (&["--on-timeout", "drop"], &["--on-timeout", "drop"]),
        (&["--format", "xml"], &["--format", "xml"]),
    ];
    for (extra, needles) in cases {
        // Start from the valid flags, minus those the case sets itself.
        let mut args = vec!["ca"];
        for pair in ok.chunks(2) {
            if !extra.contains(&pair[0]) {
                args.extend_from_slice(pair);
            }
        }
        args.extend_from_slice(extra);
        let r = fleetsim(&args);
        assert_eq!(
            r.code, 2,
            "{extra:?} should exit 2\n{}{}",
            r.stdout, r.stderr
        );
        assert!(
            !r.stderr.contains("panicked"),
            "{extra:?} panicked: {}",
            r.stderr
        );
        for n in *needles {
            assert!(
                r.stderr.contains(n),
                "{extra:?}: stderr lacks {n:?}:\n{}",
                r.stderr
            );
        }
    }
    // Missing required flags also exit 2.
    fleetsim(&["ca", "--workers", "1"]).expect_code(2);
}

/// Runs `fleetsim ca ARGS` and requires exit 2 within a few seconds with a one-line
/// message on stderr that contains every needle.
#[track_caller]
fn refused(args: &[&str], needles: &[&str]) {
    let mut all = vec!["ca"];
    all.extend_from_slice(args);
    let t0 = std::time::Instant::now();
    let r = fleetsim(&all);
    let secs = t0.elapsed().as_secs_f64();
    let r = r.expect_code(2);
    assert!(secs < 10.0, "{args:?} took {secs:.1} s to be refused");
    assert_eq!(
        r.stderr.trim_end().lines().count(),
        1,
        "one line:\n{}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "no figures for a refused run:\n{}",
        r.stdout
    );
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
}

/// Hardening row 3: a billion arrivals per second used to queue until the process ran
/// out of memory; the memory budget refuses the run before it starts.
#[test]
fn hardening_3_flood_of_arrivals_is_refused_by_the_memory_budget_not_an_oom() {
    let flood = [
        "--arrival-rate",
        "1e9",
        "--workers",
        "16",
        "--service-mean",
        "100ms",
        "--horizon",
        "1s",
    ];
    refused(&flood, &["memory budget", "4 GiB", "--max-memory"]);
    // With a 1 ns timeout and 65534 immediate retries kept by the CA, every client
    // would make all its attempts: the event budget refuses it.
    let mut storm = flood.to_vec();
    storm.extend_from_slice(&[
        "--timeout",
        "1ns",
        "--retries",
        "65534",
        "--retry-backoff",
        "none",
        "--on-timeout",
        "keep",
    ]);
    refused(&storm, &["event budget", "65535 attempts", "--max-events"]);
}

/// Hardening row 8: a 100-year horizon used to run for hours; the event budget refuses
/// it before it starts.
#[test]
fn hardening_8_century_long_horizon_is_refused_by_the_event_budget_not_a_hang() {
    refused(
        &[
            "--arrival-rate",
            "10",
            "--workers",
            "2",
            "--service-mean",
            "100ms",
            "--horizon",
            "36500d",
        ],
        &["event budget", "3.15e10", "1000000000", "--max-events"],
    );
}

#[test]
fn event_budget_stops_a_run_that_outgrows_it_while_running() {
    // 10 000 events expected, a few more drawn with this seed: the preflight admits the
    // run and the engine's budget stops it.
    let args = [
        "--arrival-rate",
        "100",
        "--workers",
        "16",
        "--service-mean",
        "10ms",
        "--horizon",
        "100s",
        "--seed",
        "2",
    ];
    let mut tight = args.to_vec();
    tight.extend_from_slice(&["--max-events", "10000"]);
    refused(
        &tight,
        &["event budget", "10000 events were used by", "--max-events"],
    );
    let mut enough = args.to_vec();
    enough.extend_from_slice(&["--max-events", "20000", "--max-memory", "64MiB"]);
    let j = run_json(&enough);
    assert_eq!(j["stop"], "horizon", "{j:#}");
}

#[test]
fn budget_flags_take_units_and_bad_values_exit_2_naming_flag_and_value() {
    let ok = [
        "ca",
        "--arrival-rate",
        "1",
        "--workers",
        "1",
        "--service-mean",
        "1s",
        "--horizon",
        "10s",
    ];
    for (flag, value) in [
        ("--max-events", "0"),
        ("--max-events", "lots"),
        ("--max-memory", "0"),
        ("--max-memory", "4XB"),
        ("--max-memory", "-1GiB"),
    ] {
        let mut args = ok.to_vec();
        args.extend_from_slice(&[flag, value]);
        let r = fleetsim(&args).expect_code(2);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains(value),
            "{flag} {value}:\n{}",
            r.stderr
        );
    }
    for size in ["512MiB", "8GB", "1048576", "2g"] {
        let mut args = ok.to_vec();
        args.extend_from_slice(&["--max-memory", size]);
        fleetsim(&args).expect_code(0);
    }
}

/// Hardening row 17: an idle CA (0.001 arrivals/s, so none or a few in the last tenth of
/// the horizon) has no goodput at the end by chance; that is no collapse.
#[test]
fn hardening_17_an_idle_ca_is_not_reported_metastable() {
    let j = run_json(&[
        "--arrival-rate",
        "0.001",
        "--workers",
        "16",
        "--service-mean",
        "100ms",
    ]);
    assert_eq!(j["metastable"], false, "{j:#}");
    assert_eq!(j["queue_end"], 0, "{j:#}");
}
