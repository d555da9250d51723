//! Verdicts on fabricated summaries (the `[expect]` section's parsing and errors are
//! tested with the scenario's other sections).

use super::*;
use crate::duration::format_seconds;
use crate::metrics::ClusterFigures;
use crate::scenario::{load_str, Expectations, ScenarioDocument};

const FLEET: &str =
    "[scenario]\nseed = 7\n[ca.pca]\n[cluster.payments]\n[cluster.web]\ncount = 3\n";

fn doc(expect: &str) -> ScenarioDocument {
    load_str("t.toml", &format!("{FLEET}{expect}"), &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(expect: &str) -> Expectations {
    doc(expect).expectations().cloned().expect("has [expect]")
}

fn figures() -> Figures {
    Figures::example()
}

/// A run of the FLEET scenario; `edit` changes (fleet, payments, web-0..2) figures.
fn run(seed: u64, edit: impl Fn(&mut Figures, &mut [Figures])) -> Summary {
    let mut fleet = figures();
    let mut clusters = vec![figures(); 4];
    edit(&mut fleet, &mut clusters);
    let names = ["payments", "web-0", "web-1", "web-2"];
    let clusters = names
        .iter()
        .zip(clusters)
        .map(|(n, figures)| ClusterFigures {
            name: n.to_string(),
            ca: "pca".into(),
            figures,
        })
        .collect();
    Summary::example(seed, fleet, clusters)
}

#[test]
fn every_holds_only_if_each_run_and_cluster_holds() {
    let e = parse(
        "[expect]\nseeds = 3\nassert = [\"cluster.web: peak_crashloop_pods <= 0\", \"recovered\", \"time_to_recover_s <= 1h\", \"recovered and not metastable\"]\n",
    );
    let runs: Vec<Summary> = (7..10)
        .map(|seed| {
            run(seed, move |f, c| {
                if seed == 8 {
                    c[2].peak_crashloop_pods = 5;
                    c[3].peak_crashloop_pods = 9;
                    f.time_to_recover_s = None;
                    f.recovered = false;
                }
                if seed == 9 {
                    c[1].peak_crashloop_pods = 7;
                }
            })
        })
        .collect();
    let o: Vec<Outcome> = e.assertions.iter().map(|a| evaluate(a, &runs)).collect();
    assert!(!o[0].holds);
    assert_eq!(
        o[0].measured,
        "0 .. 9 over 3 runs x 3 clusters; held in 6 of 9"
    );
    assert_eq!(
        o[0].worst,
        Some(Witness {
            seed: 8,
            cluster: Some("web-2".into())
        }),
        "the largest value is the worst"
    );
    assert!(!o[1].holds);
    assert_eq!(o[1].measured, "true in 2 of 3 runs");
    assert_eq!(o[1].worst.as_ref().unwrap().seed, 8);
    assert!(!o[2].holds);
    assert_eq!(o[2].measured, "2m00s .. never over 3 runs; held in 2 of 3");
    assert!(!o[3].holds);
    assert_eq!(o[3].measured, "held in 2 of 3 runs");

    let clean: Vec<Summary> = (7..10).map(|s| run(s, |_, _| {})).collect();
    let o: Vec<Outcome> = e.assertions.iter().map(|a| evaluate(a, &clean)).collect();
    assert!(o.iter().all(|o| o.holds && o.worst.is_none()), "{o:?}");
    assert_eq!(o[0].measured, "0 in all 3 runs x 3 clusters");
    assert_eq!(o[1].measured, "true in all 3 runs");
    assert_eq!(o[2].measured, "2m00s in all 3 runs");
}

#[test]
fn probability_compares_the_fraction_and_replays_the_worst_run() {
    let e = parse(
        "[expect]\nassert = [\"p(time_to_recover_s > 1h) <= 0.2 over 10 seeds\", \"p(recovered) >= 0.9 over 10 seeds\"]\n",
    );
    // Seeds 100..110; two never recover, one recovers late.
    let runs: Vec<Summary> = (100..110)
        .map(|seed| {
            run(seed, move |f, _| match seed {
                102 => f.time_to_recover_s = Some(5000.0),
                104 | 107 => {
                    f.time_to_recover_s = None;
                    f.recovered = false;
                }
                _ => {}
            })
        })
        .collect();
    let o = evaluate(&e.assertions[0], &runs);
    assert!(!o.holds, "3 of 10 > 0.2");
    assert!(
        o.measured
            .starts_with("p = 0.300 (3 of 10 runs), 95 % interval [0.108, 0.603]"),
        "{}",
        o.measured
    );
    assert_eq!(o.worst.unwrap().seed, 104, "never recovering is the worst");
    let o = evaluate(&e.assertions[1], &runs);
    assert!(!o.holds, "8 of 10 < 0.9");
    assert_eq!(
        o.worst.unwrap().seed,
        104,
        "the first run where it did not hold"
    );
    // 0 of 2: the estimate is under 0.2, the upper bound (0.658) is not: undecided,
    // and 16 runs without one would show it.
    let o = evaluate(&e.assertions[0], &runs[..2]);
    assert!(!o.holds);
    assert!(
        o.measured.starts_with("p = 0.000 (0 of 2 runs)"),
        "{}",
        o.measured
    );
    assert!(
        o.measured
            .contains("too wide to decide: the upper bound 0.658 is not <= 0.2")
            && o.measured.contains("about 16 seeds"),
        "{}",
        o.measured
    );
}

#[test]
fn probability_assertions_are_judged_by_the_wilson_bound() {
    let e = parse(
        "[expect]\nassert = [\"p(not recovered) <= 0.05 over 20 seeds\", \"p(recovered) >= 0.9 over 20 seeds\", \"p(not recovered) <= 0.2 over 20 seeds\"]\n",
    );
    let runs: Vec<Summary> = (0..20).map(|seed| run(seed, |_, _| {})).collect();
    // 0 failures in 20: the upper bound is 0.161, above 0.05: not shown.
    let o = evaluate(&e.assertions[0], &runs);
    assert!(!o.holds, "{}", o.measured);
    assert!(o.measured.contains("[0.000, 0.161]"), "{}", o.measured);
    assert!(o.measured.contains("about 73 seeds"), "{}", o.measured);
    // 20 of 20: the lower bound is 0.839, under 0.9.
    let o = evaluate(&e.assertions[1], &runs);
    assert!(!o.holds, "{}", o.measured);
    assert!(o.measured.contains("lower bound 0.839"), "{}", o.measured);
    // 0.161 <= 0.2 holds.
    assert!(evaluate(&e.assertions[2], &runs).holds);
    // Clearly over: no seed count helps, none is promised.
    assert_eq!(seeds_to_decide(0.5, 20, Op::Le, 0.05), None);
    assert_eq!(seeds_to_decide(0.0, 20, Op::Le, 0.05), Some(73));
}

#[test]
fn formats_times() {
    assert_eq!(format_seconds(35.4), "35s");
    assert_eq!(format_seconds(2801.5), "46m42s");
    assert_eq!(format_seconds(3720.0), "1h02m00s");
    assert_eq!(format_seconds(f64::INFINITY), "never");
    assert_eq!(format_figure("peak_crashloop_pods", 697.0), "697");
    assert_eq!(format_figure("ca_utilization", 0.1254), "0.125");
    assert_eq!(format_figure("crashloop_pod_seconds", 12.0), "12");
}
