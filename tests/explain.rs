//! `run --events`, `run --trace` and the explanation in `run`'s text, on the shipped
//! incident: the real binary, its files parsed.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::{fleetsim_in, scenario};

/// The `trace ...` fingerprint of a run's text output.
fn trace_hash(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("simulated "))
        .expect("a simulated line");
    line.rsplit("trace ").next().unwrap().trim().to_string()
}

#[test]
fn events_trace_and_explanation_of_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sc = scenario("incident-ca-herd.toml");
    let sc = sc.to_str().unwrap();
    let plain = fleetsim_in(d, &["run", sc, "--out", "plain"]).expect_code(0);
    let run = fleetsim_in(
        d,
        &[
            "run",
            sc,
            "--out",
            "out",
            "--events",
            "e/events.jsonl",
            "--trace",
            "t/trace.json",
            "--start",
            "2026-03-01T02:00:00Z",
        ],
    )
    .expect_code(0);
    // Recording changes nothing in the run: same trajectory fingerprint, same summary.
    assert_eq!(trace_hash(&plain.stdout), trace_hash(&run.stdout));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/summary.json")).unwrap())
            .unwrap();
    let payments = summary["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "payments")
        .unwrap()
        .clone();

    // --- events: one JSON object a line, in time order, every field there.
    let text = std::fs::read_to_string(d.join("e/events.jsonl")).unwrap();
    assert!(
        text.len() < 8_000_000,
        "events file is {} bytes",
        text.len()
    );
    let mut last = -1.0;
    let mut kinds = BTreeSet::new();
    let mut clusters = BTreeSet::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["time", "cluster", "object", "type", "reason", "message"] {
            assert!(v[key].is_string(), "no {key} in {line}");
        }
        assert!(
            v["time"].as_str().unwrap().starts_with("2026-03-01T"),
            "{line}"
        );
        let t = v["t_s"].as_f64().unwrap();
        assert!(t >= last, "not in time order at {line}");
        last = t;
        clusters.insert(v["cluster"].as_str().unwrap().to_string());
        let msg = v["message"].as_str().unwrap();
        let kind = match (v["type"].as_str().unwrap(), v["reason"].as_str().unwrap()) {
            // 503 from istiod 1.16 on; before, the listener is not open yet (refused).
            ("Warning", "Unhealthy")
                if msg.starts_with(
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                ) || (msg.starts_with("Readiness probe failed: Get ")
                    && msg.ends_with("connect: connection refused")) =>
            {
                assert!(
                    v["object"].as_str().unwrap().starts_with("pod/istiod-"),
                    "{line}"
                );
                "istiod readiness"
            }
            ("Warning", "FailedCreate") => {
                assert!(
                    msg.starts_with(
                        "Error creating: Internal error occurred: failed calling webhook"
                    ),
                    "{line}"
                );
                "webhook"
            }
            ("warn", "ca") => {
                assert!(
                    msg.starts_with("ca request failed, starting attempt "),
                    "{line}"
                );
                assert_eq!(v["container"], "istio-proxy");
                "ca retry"
            }
            ("warn", "default") => {
                assert_eq!(msg, "Aborting proxy");
                "abort"
            }
            ("Normal", "Signed") => {
                assert_eq!(msg, "The CSR has been signed");
                assert!(
                    v["object"]
                        .as_str()
                        .unwrap()
                        .starts_with("certificatesigningrequest/csr-"),
                    "{line}"
                );
                "signed"
            }
            ("Warning", "BackOff") => {
                assert!(
                    msg.starts_with("Back-off restarting failed container istio-proxy in pod "),
                    "{line}"
                );
                "backoff"
            }
            ("Warning", "FailedPostStartHook") => "poststart",
            ("Normal", "Killing") => "killing",
            ("Warning", "PodEvictionFailure") => {
                assert!(
                    v["object"].as_str().unwrap().starts_with("nodegroup/"),
                    "{line}"
                );
                "eviction failure"
            }
            (t, r) => format!("{t} {r}").leak(),
        };
        kinds.insert(kind);
    }
    for k in [
        "istiod readiness",
        "ca retry",
        "abort",
        "signed",
        "backoff",
        "poststart",
        "killing",
        "eviction failure",
    ] {
        assert!(kinds.contains(k), "no {k} line; kinds: {kinds:?}");
    }
    // The webhook's failure shows exactly when the model's webhook failed.
    let webhook_failed = payments["webhook_failures"].as_u64().unwrap() > 0
        || summary["webhook_failures"].as_u64().unwrap() > 0;
    assert_eq!(kinds.contains("webhook"), webhook_failed, "{kinds:?}");
    assert!(clusters.contains("payments"));

    // --- trace: Trace Event JSON with spans, counters and names.
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("t/trace.json")).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    assert!(
        count("X") > 100 && count("C") > 100 && count("M") > 31,
        "{}",
        events.len()
    );
    let mut phases = BTreeSet::new();
    for e in events {
        assert!(e["pid"].is_u64() && e["name"].is_string(), "{e}");
        match e["ph"].as_str().unwrap() {
            "X" => {
                assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0);
                phases.insert(e["name"].as_str().unwrap().to_string());
            }
            "C" => assert!(e["args"]["value"].is_number(), "{e}"),
            "M" => assert!(e["args"]["name"].is_string(), "{e}"),
            p => panic!("unexpected phase {p}"),
        }
    }
    for p in ["waiting for cert", "crashloop back-off", "running"] {
        assert!(phases.contains(p), "no {p} span: {phases:?}");
    }

    // --- the explanation names the drain that failed, its workload and its PDB.
    let out = &run.stdout;
    let story = &out[out.find("what happened:").expect("an explanation")..];
    assert!(story.contains("payments:"), "{story}");
    assert!(story.contains("PodEvictionFailure"), "{story}");
    assert!(story.contains("the PDB of "), "{story}");
    assert!(
        ["checkout", "cart", "payments-api"]
            .iter()
            .any(|w| story.contains(&format!("PDB of {w} (maxUnavailable"))),
        "{story}"
    );
    assert!(
        story.contains("first istiod CA request time-out at t="),
        "{story}"
    );
    assert!(story.contains("crashloop peak "), "{story}");
    assert!(
        !story.contains("canary:"),
        "a clean cluster is explained: {story}"
    );
}

#[test]
fn events_and_trace_paths_are_checked_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("adir")).unwrap();
    for flag in ["--events", "--trace"] {
        let bad = fleetsim_in(d, &["run", flag, "adir"]).expect_code(2);
        assert!(
            bad.stderr.contains(&format!("{flag} adir")),
            "{}",
            bad.stderr
        );
        assert!(bad.stderr.contains("is a directory"), "{}", bad.stderr);
        assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    }
    let bad = fleetsim_in(d, &["run", "--start", "2026-03-01T02:00:00Z"]).expect_code(2);
    assert!(
        bad.stderr
            .contains("--start needs --openmetrics or --events"),
        "{}",
        bad.stderr
    );
    assert!(!d.join("output").exists(), "the run went ahead");
}

#[test]
fn a_clean_run_has_no_explanation_and_writes_empty_event_files_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sc = scenario("healthy-baseline.toml");
    let run = fleetsim_in(
        d,
        &[
            "run",
            sc.to_str().unwrap(),
            "--out",
            "o",
            "--events",
            "ev.jsonl",
        ],
    )
    .expect_code(0);
    if run.stdout.contains("came through cleanly\n") && !run.stdout.contains("needing attention") {
        assert!(!run.stdout.contains("what happened:"), "{}", run.stdout);
    }
    let text = std::fs::read_to_string(d.join("ev.jsonl")).unwrap();
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    assert!(!d.join("trace.json").exists());
}
