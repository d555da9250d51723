//! `fleetsim compare` and `fleetsim calibrate` through the real binary: a run compared
//! with itself, a known service time recovered from a synthetic "observed" run (as a
//! timeseries.csv and as Prometheus query_range JSON), thread-count independence, and
//! bad inputs.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use crate::util::{fleetsim, fleetsim_in, root, Run};

/// The small scenario: 300 pods behind a 2-worker CA whose service_mean is 150ms.
fn scenario() -> String {
    root()
        .join("tests/data/calibrate-small.toml")
        .display()
        .to_string()
}

/// `fleetsim run` of the small scenario with `sets`, into `dir`.
fn run_into(dir: &Path, sets: &[&str]) {
    let mut args = vec![
        "run".to_string(),
        scenario(),
        "--out".into(),
        dir.display().to_string(),
    ];
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fleetsim(&args).expect_code(0);
}

/// One column of a timeseries.csv (fleet rows) as a Prometheus query_range response:
/// sampled every `step` s from Unix time `start`, split across two series that sum to it.
fn prometheus_json(timeseries: &Path, column: &str, metric: &str, start: f64, step: f64) -> String {
    let text = std::fs::read_to_string(timeseries).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (ct, cc, cv) = (
        header.iter().position(|h| *h == "time_s").unwrap(),
        header.iter().position(|h| *h == "cluster").unwrap(),
        header.iter().position(|h| *h == column).unwrap(),
    );
    let samples: Vec<(f64, f64)> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[cc] == "*")
        .map(|f| (f[ct].parse().unwrap(), f[cv].parse().unwrap()))
        .collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut t = 0.0;
    let mut i = 0;
    while t <= samples.last().unwrap().0 {
        while i + 1 < samples.len() && samples[i + 1].0 <= t {
            i += 1;
        }
        let v = samples[i].1;
        let half = (v / 2.0).floor();
        a.push(json!([start + t, format!("{half}")]));
        b.push(json!([start + t, format!("{}", v - half)]));
        t += step;
    }
    json!({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": metric, "pod": "signer-0"}, "values": a},
        {"metric": {"__name__": metric, "pod": "signer-1"}, "values": b},
    ]}})
    .to_string()
}

#[test]
fn a_run_compared_with_itself_has_no_error() {
    let dir = tempfile::tempdir().unwrap();
    run_into(dir.path(), &[]);
    let ts = dir.path().join("timeseries.csv");
    let r = fleetsim(&[
        "compare",
        dir.path().to_str().unwrap(),
        ts.to_str().unwrap(),
        "--format",
        "json",
    ])
    .expect_code(0);
    let j = r.json();
    let series = j["series"].as_array().unwrap();
    // Every column but time_s and cluster.
    let columns = fleetsim::metrics::TIMESERIES_HEADER.split(',').count() - 2;
    assert_eq!(series.len(), columns, "every timeseries.csv column");
    for s in series {
        for k in ["bias", "rmse", "nrmse", "peak_error", "peak_time_error_s"] {
            assert_eq!(s[k].as_f64(), Some(0.0), "{k} of {}", s["series"]);
        }
        assert!(s["mape_pct"].is_null() || s["mape_pct"].as_f64() == Some(0.0));
        assert!(s["points"].as_u64().unwrap() > 100);
    }
    assert_eq!(j["mean_nrmse"].as_f64(), Some(0.0));
    // The same for one cluster's rows, in text.
    let r = fleetsim(&[
        "compare",
        ts.to_str().unwrap(),
        ts.to_str().unwrap(),
        "--cluster",
        "shop",
        "--map",
        "ca_queue=ca_queue",
    ])
    .expect_code(0);
    assert!(r.stdout.contains("mean NRMSE 0 "), "{}", r.stdout);
}

fn calibrate(observed: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "calibrate".to_string(),
        scenario(),
        observed.display().to_string(),
        "--param".into(),
        "ca.pca.service_mean=50ms..400ms".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fleetsim(&args)
}

fn service_mean_s(j: &Value) -> f64 {
    let v = j["params"][0]["value"].as_str().unwrap();
    v.strip_suffix("ms").unwrap().parse::<f64>().unwrap() / 1000.0
}

#[test]
fn calibrate_recovers_a_service_time_from_a_synthetic_observed_run() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let obs = dir.path().join("observed");
    run_into(&obs, &["ca.pca.service_mean=200ms"]);
    let ts = obs.join("timeseries.csv");

    // From fleetsim's own timeseries.csv, three series.
    let r = calibrate(
        &ts,
        &[
            "--map",
            "ca_queue=ca_queue",
            "--map",
            "csr_in_flight=csr_in_flight",
            "--map",
            "pods_ready=pods_ready",
        ],
    )
    .expect_code(0);
    let j = r.json();
    let got = service_mean_s(&j);
    assert!(
        (got / 0.2 - 1.0).abs() <= 0.10,
        "recovered {got} s, truth 0.2 s"
    );
    assert_eq!(j["series"].as_array().unwrap().len(), 3);
    assert!(j["evaluations"].as_u64().unwrap() >= 20);
    assert!(j["set_line"]
        .as_str()
        .unwrap()
        .starts_with("--set ca.pca.service_mean="));
    // The printed --set reproduces the error reached.
    let best = dir.path().join("best");
    run_into(&best, &[j["params"][0]["set"].as_str().unwrap()]);
    let c = fleetsim(&[
        "compare",
        best.to_str().unwrap(),
        ts.to_str().unwrap(),
        "--map",
        "ca_queue=ca_queue",
        "--map",
        "csr_in_flight=csr_in_flight",
        "--map",
        "pods_ready=pods_ready",
        "--format",
        "json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(c["mean_nrmse"], j["error"]);

    // From Prometheus: 15 s steps, Unix timestamps, two pods summed, a metric name mapped.
    let prom = dir.path().join("signer_queue_depth.json");
    std::fs::write(
        &prom,
        prometheus_json(&ts, "ca_queue", "signer_queue_depth", 1716796800.0, 15.0),
    )
    .unwrap();
    let r = calibrate(&prom, &["--map", "signer_queue_depth=ca_queue"]).expect_code(0);
    let j = r.json();
    let got = service_mean_s(&j);
    assert!(
        (got / 0.2 - 1.0).abs() <= 0.10,
        "recovered {got} s from Prometheus, truth 0.2 s"
    );
    assert_eq!(j["alignment"]["origin"], "2024-05-27T08:00:00Z");
    assert_eq!(j["alignment"]["from"], "first sample");
    let secs = t0.elapsed().as_secs_f64();
    assert!(secs < 20.0, "took {secs:.1} s");
}

#[test]
fn the_answer_does_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let obs = dir.path().join("observed");
    run_into(&obs, &["ca.pca.service_mean=120ms"]);
    let ts = obs.join("timeseries.csv");
    let strip = |mut j: Value| {
        j.as_object_mut().unwrap().remove("wall_s");
        j
    };
    let one = strip(
        calibrate(&ts, &["--map", "ca_queue=ca_queue", "--threads", "1"])
            .expect_code(0)
            .json(),
    );
    let two = strip(
        calibrate(&ts, &["--map", "ca_queue=ca_queue", "--threads", "3"])
            .expect_code(0)
            .json(),
    );
    assert_eq!(one, two);
}

#[test]
fn the_shipped_prometheus_fixture_compares() {
    let dir = tempfile::tempdir().unwrap();
    run_into(dir.path(), &["ca.pca.service_mean=200ms"]);
    let fixture = root().join("tests/data/prometheus-ca-queue.json");
    let j = fleetsim(&[
        "compare",
        dir.path().to_str().unwrap(),
        fixture.to_str().unwrap(),
        "--map",
        "signer_queue_depth=ca_queue",
        "--start",
        "2024-05-27T08:00:00Z",
        "--format",
        "json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(j["alignment"]["from"], "--start");
    let s = &j["series"][0];
    assert_eq!(s["series"], "ca_queue");
    assert!(s["points"].as_u64().unwrap() > 100);
    assert!(s["nrmse"].as_f64().unwrap().is_finite());
}

#[test]
fn bad_inputs_exit_2_naming_the_file_or_flag_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    run_into(&dir.path().join("run"), &[]);
    let ok = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"q"},"values":[[1,"1"],[2,"2"]]}]}}"#;
    let files = [
        (
            "malformed.json",
            "{\"status\": \"success\", \"data\": [1, 2",
        ),
        (
            "status.json",
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#,
        ),
        (
            "values.json",
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"1"],[2,"lots"]]}]}}"#,
        ),
        ("ca_queue.json", ok),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let compare = |args: &[&str]| {
        let mut a = vec!["compare", "run"];
        a.extend_from_slice(args);
        fleetsim_in(dir.path(), &a).expect_code(2)
    };
    let cases: Vec<(Run, &str)> = vec![
        (compare(&["malformed.json"]), "error: malformed.json:1:"),
        (
            compare(&["status.json"]),
            "error: status.json: status: Prometheus answered \"error\" (bad_data: \"invalid parameter \\\"query\\\"\")",
        ),
        (
            compare(&["values.json", "--map", "values=ca_queue"]),
            "error: values.json: data.result[0].values[1][1]: value \"lots\" is not a number",
        ),
        (
            compare(&["ca_queue.json", "--map", "q=ca_queu"]),
            "error: --map q=ca_queu: unknown series \"ca_queu\"",
        ),
        (
            compare(&["ca_queue.json", "--map", "nothing=ca_queue"]),
            "error: --map nothing=ca_queue: no observed file has a metric, file stem or column named \"nothing\"",
        ),
        (
            compare(&["ca_queue.json", "--map", "novalue"]),
            "error: invalid value 'novalue' for '--map <NAME=SERIES>'",
        ),
        (
            compare(&["ca_queue.json", "--cluster", "nope"]),
            "error: run/timeseries.csv: no rows for cluster \"nope\"",
        ),
        (compare(&["missing.json"]), "error: missing.json: cannot read"),
        (
            compare(&["ca_queue.json", "--start", "yesterday"]),
            "error: invalid value 'yesterday' for '--start <TIME>'",
        ),
    ];
    for (r, want) in cases {
        assert!(
            r.stderr.starts_with(want),
            "want {want:?}\n got {:?}",
            r.stderr
        );
    }

    let sc = scenario();
    let calibrate = |args: &[&str]| {
        let mut a = vec!["calibrate", sc.as_str(), "run/timeseries.csv"];
        a.extend_from_slice(args);
        fleetsim_in(dir.path(), &a).expect_code(2)
    };
    let cases: Vec<(Run, &str)> = vec![
        (
            calibrate(&["--param", "ca.pca.service_mean=400ms..50ms"]),
            "error: invalid value 'ca.pca.service_mean=400ms..50ms' for '--param <PATH=LO..HI>': range 400ms..50ms is empty: LO > HI",
        ),
        (
            calibrate(&["--param", "ca.pca.service_mean=fast..slow"]),
            "error: invalid value 'ca.pca.service_mean=fast..slow' for '--param <PATH=LO..HI>': LO and HI must both be integers, numbers or durations",
        ),
        (
            calibrate(&["--param", "ca.pca.servce_mean=50ms..400ms"]),
            "error: --param ca.pca.servce_mean=50ms..400ms: ",
        ),
        (
            calibrate(&["--param", "ca.pcb.service_mean=50ms..400ms"]),
            "error: --param ca.pcb.service_mean=50ms..400ms: ",
        ),
        (
            calibrate(&["--param", "ca.pca.workers=0..4"]),
            "error: --param ca.pca.workers=0..4: ",
        ),
        (
            calibrate(&["--param", "ca.pca.workers=1..4", "--cluster", "shpo"]),
            "error: --cluster shpo: the scenario has no cluster \"shpo\"",
        ),
        (calibrate(&[]), "error: the following required arguments were not provided:\n  --param"),
    ];
    for (r, want) in cases {
        assert!(
            r.stderr.starts_with(want),
            "want {want:?}\n got {:?}",
            r.stderr
        );
    }
    // The unknown path names the field and suggests the right one.
    let r = calibrate(&["--param", "ca.pca.servce_mean=50ms..400ms"]);
    assert!(
        r.stderr.contains("did you mean \"service_mean\""),
        "{}",
        r.stderr
    );
    let r = calibrate(&["--param", "ca.pca.workers=0..4"]);
    assert!(
        r.stderr.contains("ca.pca.workers") && r.stderr.contains("0"),
        "{}",
        r.stderr
    );
}

#[test]
fn two_parameters_on_a_ridge_are_recovered() {
    // workers and service_mean trade off (capacity = workers / service_mean): one worker
    // at 100 ms nearly matches two at 200 ms. Refining from several grid points finds the
    // exact pair.
    let dir = tempfile::tempdir().unwrap();
    let obs = dir.path().join("observed");
    run_into(&obs, &["ca.pca.service_mean=200ms"]);
    let j = calibrate(
        &obs.join("timeseries.csv"),
        &[
            "--map",
            "ca_queue=ca_queue",
            "--map",
            "pods_ready=pods_ready",
            "--param",
            "ca.pca.workers=1..8",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(j["params"][1]["path"], "ca.pca.workers");
    assert_eq!(j["params"][1]["value"], "2");
    let got = service_mean_s(&j);
    assert!(
        (got / 0.2 - 1.0).abs() <= 0.10,
        "recovered {got} s, truth 0.2 s"
    );
}
