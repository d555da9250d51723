//! `fleetsim ca fit`: the real binary on the R usl package's test vector and the
//! fixtures, bad load tests, and the fitted stanza driving the CA component in a closed
//! system (N requests always in service) that reproduces the fitted X(N).

use std::path::Path;

use fleetsim::ca::{CaEvent, CaOutcome, CertificateAuthority, OnTimeout};
use fleetsim::cli::ca_fit::StanzaValues;
use fleetsim::engine::{rng, Context, Limits, Model, SimTime, Simulation, TraceEvent};
use fleetsim::fit::{fit_usl, UslFit};
use fleetsim::observed::loadtest;

use crate::util::{fleetsim, fleetsim_in, root};

fn data(name: &str) -> String {
    root().join("tests/data").join(name).display().to_string()
}

#[track_caller]
fn close(name: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs(),
        "{name}: got {got}, want {want} (tolerance {tol})"
    );
}

#[test]
fn recovers_the_r_usl_test_vector_and_reports_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fit");
    let r = fleetsim(&[
        "ca",
        "fit",
        &data("usl/r-coef.csv"),
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    let j = r.json();
    // tests/coef.R of the R usl package: alpha = beta = 0.02, gamma = 1.
    close("sigma", j["sigma"].as_f64().unwrap(), 0.02, 1e-3);
    close("kappa", j["kappa"].as_f64().unwrap(), 0.02, 1e-3);
    close("lambda", j["lambda"].as_f64().unwrap(), 1.0, 1e-3);
    let n = j["peak_concurrency"].as_f64().unwrap();
    close("peak N", n, (0.98_f64 / 0.02).sqrt(), 1e-3);
    close(
        "peak X",
        j["peak_throughput"].as_f64().unwrap(),
        7.0 / (1.0 + 0.02 * 6.0 + 0.02 * 42.0),
        1e-3,
    );
    assert!(j["sigma_se"].as_f64().unwrap() > 0.0);
    assert!(j["r_squared"].as_f64().unwrap() > 0.9999);
    for f in [
        "usl_fit.csv",
        "usl_fit.svg",
        "usl_fit.png",
        "usl_fit.json",
        "stanza.toml",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("usl_fit.json")).unwrap(),
        r.stdout
    );
    let png = std::fs::read(out.join("usl_fit.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn specsdm91_matches_the_published_summary() {
    let dir = tempfile::tempdir().unwrap();
    let j = fleetsim_in(
        dir.path(),
        &["ca", "fit", &data("usl/specsdm91.csv"), "--format", "json"],
    )
    .expect_code(0)
    .json();
    // tests/summary.Rout.save: alpha 2.773e-02 (9.122e-03), beta 1.044e-04 (1.988e-05),
    // gamma 9.000e+01 (1.421e+01); peak-scalability.R: 96.51956.
    close("sigma", j["sigma"].as_f64().unwrap(), 2.773e-2, 1e-3);
    close("kappa", j["kappa"].as_f64().unwrap(), 1.044e-4, 1e-3);
    close("lambda", j["lambda"].as_f64().unwrap(), 90.0, 1e-3);
    close("sigma se", j["sigma_se"].as_f64().unwrap(), 9.122e-3, 1e-3);
    close(
        "peak",
        j["peak_concurrency"].as_f64().unwrap(),
        96.51956,
        1e-4,
    );
    assert!(
        dir.path()
            .join("output/ca-fit/specsdm91/usl_fit.png")
            .is_file(),
        "default output directory"
    );
}

#[test]
fn text_output_has_the_coefficients_peak_and_stanza() {
    let dir = tempfile::tempdir().unwrap();
    let r = fleetsim_in(
        dir.path(),
        &[
            "ca",
            "fit",
            &data("loadtest-ca.csv"),
            "--name",
            "vault-pki",
            "--workers",
            "64",
        ],
    )
    .expect_code(0);
    for want in [
        "22 measurements at 11 concurrencies",
        "lambda ",
        "sigma ",
        "kappa ",
        "peak at N* = sqrt((1 - sigma) / kappa) = ",
        "[ca.vault-pki]\nworkers = 64\nservice_mean = \"",
        "contention_sigma = 0.04",
        "coherency_kappa = 0.000",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?}\n{}", r.stdout);
    }
}

#[test]
fn a_flat_load_test_has_no_peak_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("amdahl.csv");
    // X(N) = 10 N / (1 + 0.1 (N - 1)): kappa = 0, ceiling 100/s.
    let rows: String = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
        .iter()
        .map(|n: &f64| format!("{n},{}\n", 10.0 * n / (1.0 + 0.1 * (n - 1.0))))
        .collect();
    std::fs::write(&csv, format!("concurrency,throughput\n{rows}")).unwrap();
    let j = fleetsim_in(dir.path(), &["ca", "fit", "amdahl.csv", "--format", "json"])
        .expect_code(0)
        .json();
    assert_eq!(j["kappa"].as_f64(), Some(0.0));
    assert!(j["peak_concurrency"].is_null());
    close(
        "ceiling",
        j["ceiling_throughput"].as_f64().unwrap(),
        100.0,
        1e-6,
    );
    let note = j["peak_note"].as_str().unwrap();
    assert!(
        note.contains("no peak") && note.contains("N* infinite"),
        "{note}"
    );
}

#[test]
fn bad_load_tests_exit_2_with_one_line_naming_file_line_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 8] = [
        (
            "missing-column.csv",
            "concurrency,tput\n1,2\n2,3\n3,4\n",
            "missing-column.csv:1: no column \"throughput\" in the header (found: \"concurrency\", \"tput\")",
        ),
        (
            "too-few.csv",
            "concurrency,throughput\n1,2\n2,3\n",
            "too-few.csv: 2 measurements at 2 distinct concurrencies: fitting lambda, sigma and kappa needs at least 3",
        ),
        (
            "negative.csv",
            "concurrency,throughput\n1,2\n2,-3\n3,4\n",
            "negative.csv:3: column \"throughput\" (column 2): must be >= 0, got \"-3\"",
        ),
        (
            "nan.csv",
            "concurrency,throughput\n1,2\nNaN,3\n3,4\n",
            "nan.csv:3: column \"concurrency\" (column 1): \"NaN\" is not a finite number",
        ),
        (
            "text.csv",
            "concurrency,throughput\n1,2\n2,lots\n3,4\n",
            "text.csv:3: column \"throughput\" (column 2): \"lots\" is not a number",
        ),
        (
            "duplicate.csv",
            "concurrency,throughput,throughput\n1,2,2\n",
            "duplicate.csv:1: duplicate header: \"throughput\" is both column 2 and column 3",
        ),
        (
            "empty.csv",
            "",
            "empty.csv: empty: expected a header line \"concurrency,throughput\"",
        ),
        (
            "binary.csv",
            "concurrency,throughput\n1,2\n\u{0}\u{1}",
            "binary.csv:3: column \"concurrency\" (column 1): \"\\0\\u{1}\" is not a number",
        ),
    ];
    for (name, text, want) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        let r = fleetsim_in(dir.path(), &["ca", "fit", name]).expect_code(2);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
        assert!(
            r.stderr.starts_with(&format!("error: {want}")),
            "{name}: want {want:?}\n got {:?}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
    // Not UTF-8, a directory, a missing file, a huge file.
    std::fs::write(
        dir.path().join("latin1.csv"),
        b"concurrency,throughput\n1,2\xe9\n",
    )
    .unwrap();
    let r = fleetsim_in(dir.path(), &["ca", "fit", "latin1.csv"]).expect_code(2);
    assert!(
        r.stderr.starts_with("error: latin1.csv:2: not valid UTF-8"),
        "{}",
        r.stderr
    );
    let r = fleetsim_in(dir.path(), &["ca", "fit", "."]).expect_code(2);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    let r = fleetsim_in(dir.path(), &["ca", "fit", "nope.csv"]).expect_code(2);
    assert!(
        r.stderr.starts_with("error: nope.csv: cannot read"),
        "{}",
        r.stderr
    );
    let huge = std::fs::File::create(dir.path().join("huge.csv")).unwrap();
    huge.set_len(fleetsim::observed::MAX_FILE_BYTES + 1)
        .unwrap();
    let r = fleetsim_in(dir.path(), &["ca", "fit", "huge.csv"]).expect_code(2);
    assert!(
        r.stderr.starts_with("error: huge.csv: file is 67108865 bytes; observed data files are limited to 67108864 bytes"),
        "{}",
        r.stderr
    );
}

#[test]
fn ca_keeps_its_flags_beside_the_fit_subcommand() {
    let r = fleetsim(&[
        "ca",
        "--arrival-rate",
        "5",
        "--workers",
        "2",
        "--service-mean",
        "100ms",
        "--horizon",
        "100s",
        "--format",
        "json",
    ])
    .expect_code(0);
    assert!(r.json()["served"].as_u64().unwrap() > 300);
    let r = fleetsim(&["ca", "--arrival-rate", "5", "fit", "x.csv"]).expect_code(2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    let r = fleetsim(&["ca"]).expect_code(2);
    assert!(r.stderr.contains("--arrival-rate"), "{}", r.stderr);
    let r = fleetsim(&["ca", "--help"]).expect_code(0);
    assert!(r.stdout.contains("fit ") && r.stdout.contains("--arrival-rate"));
}

/// A closed system: `n` clients, each resubmitting the moment its request is served, so
/// exactly `n` requests are always in service (workers >= n).
struct Closed {
    ca: CertificateAuthority,
    clients: u64,
    warmup: SimTime,
    served: u64,
    out: Vec<CaOutcome>,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Ca(CaEvent),
    Start,
}

impl From<CaEvent> for Ev {
    fn from(e: CaEvent) -> Self {
        Ev::Ca(e)
    }
}

impl TraceEvent for Ev {
    fn kind(&self) -> u32 {
        match self {
            Ev::Ca(e) => e.kind(),
            Ev::Start => 1,
        }
    }
    fn entity(&self) -> u64 {
        match self {
            Ev::Ca(e) => e.entity(),
            Ev::Start => 0,
        }
    }
}

impl Model for Closed {
    type Event = Ev;
    fn handle(&mut self, e: Ev, ctx: &mut Context<Ev>) {
        match e {
            Ev::Start => {
                for client in 0..self.clients {
                    self.ca.submit(client, None, OnTimeout::Cancel, ctx);
                }
            }
            Ev::Ca(e) => {
                let mut out = std::mem::take(&mut self.out);
                self.ca.handle(e.kind, ctx, &mut out);
                for o in out.drain(..) {
                    if let CaOutcome::Served { request, .. } = o {
                        if ctx.now() >= self.warmup {
                            self.served += 1;
                        }
                        self.ca.submit(request, None, OnTimeout::Cancel, ctx);
                    }
                }
                self.out = out;
            }
        }
    }
}

/// Completions per second of the stanza's CA with `n` requests always in service.
fn closed_throughput(stanza: &StanzaValues, n: u64, seed: u64) -> (f64, u64) {
    let (warmup, horizon) = (SimTime::from_secs(2), SimTime::from_secs(62));
    let ca = CertificateAuthority::new(0, stanza.ca_config(), rng::named_stream(seed, "ca/fit"));
    let mut sim = Simulation::new(Closed {
        ca,
        clients: n,
        warmup,
        served: 0,
        out: Vec::new(),
    });
    sim.schedule_at(SimTime::ZERO, Ev::Start);
    sim.run(Limits::horizon(horizon));
    let served = sim.model.served;
    (served as f64 / (horizon - warmup).as_secs_f64(), served)
}

fn fixture_fit() -> UslFit {
    let path = data("loadtest-ca.csv");
    let text = std::fs::read_to_string(Path::new(&path)).unwrap();
    fit_usl(&loadtest::parse(&path, &text).unwrap()).unwrap()
}

#[test]
fn the_stanza_makes_the_simulated_ca_reproduce_the_fitted_curve() {
    // Both the fixture and the Cisco benchmark (peak at 35.6, ~1 ms service).
    let cisco = {
        let path = data("usl/cisco.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        fit_usl(&loadtest::parse(&path, &text).unwrap()).unwrap()
    };
    for (fit, concurrencies) in [(fixture_fit(), [1u64, 8, 40, 96]), (cisco, [1, 4, 16, 36])] {
        let stanza = StanzaValues::from_fit(&fit, "loadtested", 128).unwrap();
        for n in concurrencies {
            let (x, served) = closed_throughput(&stanza, n, 11);
            // With exponential work and a constant rate while n jobs are in service, the
            // completions are a Poisson process: relative sd 1/sqrt(count); allow 4 sd.
            let tol = 4.0 / (served as f64).sqrt();
            let want = fit.throughput(n as f64);
            eprintln!(
                "lambda {:.2}: N = {n:>3}: simulated {x:>9.2}/s, fitted X(N) {want:>9.2}/s, {:+.2} % ({served} served)",
                fit.lambda,
                100.0 * (x / want - 1.0)
            );
            assert!(
                (x - want).abs() <= tol * want,
                "N = {n}: simulated {x:.2}/s, fitted X(N) {want:.2}/s (tolerance {:.2} %)",
                100.0 * tol
            );
        }
    }
}

#[test]
fn the_printed_stanza_is_a_valid_ca_with_those_values() {
    let fit = fixture_fit();
    let stanza = StanzaValues::from_fit(&fit, "vault-pki", 64).unwrap();
    let text = format!(
        "{}\n[cluster.web]\n",
        stanza.toml("tests/data/loadtest-ca.csv", &fit)
    );
    let doc = fleetsim::scenario::load_str("stanza.toml", &text, &[])
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ca = &doc.scenario.cas[0];
    assert_eq!(ca.name, "vault-pki");
    assert_eq!(ca.config, stanza.ca_config());
    close(
        "service_mean",
        stanza.service_mean.as_secs_f64(),
        1.0 / fit.lambda,
        1e-6,
    );
    close("sigma", stanza.sigma, fit.sigma, 1e-5);
    close("kappa", stanza.kappa, fit.kappa, 1e-5);
}
