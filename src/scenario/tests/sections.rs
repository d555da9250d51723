//! The sections other layers run, validated at load: `[strategies]`, `[sweep]` (every
//! grid point) and `[expect]`; errors with file, line and field.

use super::super::*;
use crate::metrics::FIGURES;
use crate::predicate::{CompareOp, Predicate};

const FLEET: &str =
    "[scenario]\nseed = 7\n[ca.pca]\n[cluster.payments]\n[cluster.web]\ncount = 3\n";

fn expect_doc(expect: &str) -> ScenarioDocument {
    load_str("t.toml", &format!("{FLEET}{expect}"), &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(expect: &str) -> Expectations {
    expect_doc(expect)
        .expectations()
        .cloned()
        .expect("has [expect]")
}

fn parse_err(expect: &str) -> String {
    match load_str("t.toml", &format!("{FLEET}{expect}"), &[]) {
        Ok(d) => panic!("expected errors, got {:?}", d.expectations()),
        Err(e) => e.to_string(),
    }
}

const SMALL: &str = include_str!("../../../tests/data/sweep-small.toml");

fn doc(text: &str) -> ScenarioDocument {
    load_str("t.toml", text, &[]).unwrap_or_else(|e| panic!("expected valid:\n{e}"))
}

fn load_err(text: &str) -> String {
    match load_str("t.toml", text, &[]) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The small sweep scenario with its `[sweep]` section replaced by `section`: its errors.
fn spec_err(section: &str) -> String {
    let base = &SMALL[..SMALL.find("[sweep]").unwrap()];
    load_err(&format!("{base}{section}"))
}

#[test]
fn parses_every_form() {
    let e = parse(
        "[expect]\nseeds = 3\nassert = [\n  \"recovered == true\",\n  \"cluster.payments: metastable == false\",\n  \"cluster.web: peak_crashloop_pods == 0 over 5 seeds\",\n  \"cluster.*: not metastable\",\n  \"fleet: p(time_to_recover_s > 1h) <= 0.05 over 50 seeds\",\n  \"P ( (recovered or metastable) ) >= 0.5\",\n]\n",
    );
    assert_eq!(e.seeds, 3);
    assert_eq!(e.runs(), 50);
    let a = &e.assertions;
    assert_eq!(a.len(), 6);
    assert_eq!(a[0].scope, Scope::Fleet);
    assert_eq!(a[0].quantifier, Quantifier::Every { seeds: 3 });
    assert_eq!(a[0].path, "expect.assert[0]");
    assert_eq!(
        a[1].scope,
        Scope::Clusters {
            name: "payments".into(),
            indices: vec![0]
        }
    );
    assert_eq!(
        a[2].scope,
        Scope::Clusters {
            name: "web".into(),
            indices: vec![1, 2, 3]
        }
    );
    assert_eq!(a[2].quantifier, Quantifier::Every { seeds: 5 });
    assert!(matches!(&a[3].scope, Scope::Clusters { indices, .. } if indices.len() == 4));
    assert_eq!(
        a[4].quantifier,
        Quantifier::Probability {
            op: CompareOp::Le,
            bound: 0.05,
            seeds: 50
        }
    );
    assert_eq!(
        a[4].predicate,
        Predicate::parse("time_to_recover_s > 3600", &FIGURES).unwrap()
    );
    assert_eq!(
        a[5].quantifier,
        Quantifier::Probability {
            op: CompareOp::Ge,
            bound: 0.5,
            seeds: 3
        }
    );
}

#[test]
fn instance_names_work_too() {
    let e = parse("[expect]\nassert = [\"cluster.web-1: recovered\"]\n");
    assert_eq!(
        e.assertions[0].scope,
        Scope::Clusters {
            name: "web-1".into(),
            indices: vec![2]
        }
    );
    assert_eq!(e.seeds, 1);
}

#[test]
fn errors_name_file_line_and_field() {
    let base_line = FLEET.lines().count();
    let e = parse_err(
        "[expect]\nassert = [\n  \"recovered == true\",\n  \"recoverd == true\",\n  \"cluster.paymnts: recovered\",\n  \"p(recovered) <= 1.5\",\n]\n",
    );
    let l = |i: usize| format!("t.toml:{}: expect.assert[{}]", base_line + 3 + i, i);
    assert!(
        e.contains(&format!(
            "{}: \"recoverd == true\": unknown figure \"recoverd\"; did you mean \"recovered\"?",
            l(1)
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}: \"cluster.paymnts: recovered\": unknown cluster \"paymnts\"; clusters: web, payments", l(2))),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "{}: \"p(recovered) <= 1.5\": a probability must be a number in [0, 1]",
            l(3)
        )),
        "{e}"
    );
    assert_eq!(e.lines().count(), 3, "{e}");
}

#[test]
fn rejects_malformed_sections() {
    for (expect, want) in [
        ("[expect]\nrecovered = true\n", "t.toml:8: expect.recovered: unknown field; write assertions as strings, e.g. assert = [\"recovered == ...\"]"),
        ("[expect]\nassert = []\n", "t.toml:8: expect.assert: no assertions"),
        ("[expect]\nseeds = 2\n", "t.toml:7: expect: no assertions"),
        ("[expect]\nassert = \"recovered\"\n", "expect.assert: must be an array of strings, got string \"recovered\""),
        ("[expect]\nassert = [3]\n", "t.toml:8: expect.assert[0]: must be a string, got integer 3"),
        ("[expect]\nseeds = 0\nassert = [\"recovered\"]\n", "t.toml:8: expect.seeds: must be 1..=10000, got 0"),
        ("[expect]\nseeds = \"3\"\nassert = [\"recovered\"]\n", "expect.seeds: must be an integer, got string \"3\""),
        ("[expect]\nassert = [\"\"]\n", "empty assertion"),
        ("[expect]\nassert = [\"recovered over 0 seeds\"]\n", "N must be 1..=10000, got \"0\""),
        ("[expect]\nassert = [\"recovered over lots seeds\"]\n", "N must be 1..=10000"),
        ("[expect]\nassert = [\"recovered over 3\"]\n", "expected \"over N seeds\" at the end"),
        ("[expect]\nassert = [\"over 3 seeds\"]\n", "nothing to check before"),
        ("[expect]\nassert = [\"p(recovered\"]\n", "p( has no matching ')'"),
        ("[expect]\nassert = [\"p(recovered)\"]\n", "expected a comparison after p(...)"),
        ("[expect]\nassert = [\"p(recovered) < x\"]\n", "a probability must be a number in [0, 1], got \"x\""),
        ("[expect]\nassert = [\"p(peak_crashloop_pods) < 0.1\"]\n", "is a number"),
        ("[expect]\nassert = [\"clusters.web: recovered\"]\n", "scope \"clusters.web\" is neither"),
        ("[expect]\nassert = [\"cluster.: recovered\"]\n", "cluster scope without a name"),
        ("[expect]\nassert = [\"cluster.web: \"]\n", "empty predicate"),
    ] {
        let e = parse_err(expect);
        assert!(e.contains(want), "{expect:?}\n want: {want}\n  got: {e}");
    }
}

#[test]
fn strategies_are_read_in_order_and_apply() {
    let d = doc(SMALL);
    let list = d.strategies();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["all-at-once", "batches"]);
    let batches = find_strategy(list, "batches").unwrap();
    assert_eq!(batches.overrides.len(), 3);
    let sc = d.scenario_with(&batches.overrides).unwrap();
    assert!(matches!(
        sc.rollout.pacing,
        Pacing::Batches { size: 20, .. }
    ));
}

#[test]
fn strategy_keys_may_be_nested_tables() {
    let base = &SMALL[..SMALL.find("[strategies").unwrap()];
    let d = doc(&format!(
        "{base}[strategies.a]\nrollout.pacing = \"batches\"\n[strategies.b]\n\"rollout.pacing\" = \"batches\"\n[strategies.baseline]\n"
    ));
    let list = d.strategies();
    assert_eq!(list[0].overrides, list[1].overrides);
    assert!(
        list[2].overrides.is_empty(),
        "an empty bundle is the scenario as written"
    );
}

#[test]
fn bad_strategies_name_the_strategy_line_and_path() {
    let base = &SMALL[..SMALL.find("[strategies").unwrap()];
    let line = base.lines().count() + 2;
    let e = load_err(&format!(
        "{base}[strategies.x]\n\"rollout.pacng\" = \"batches\"\n[strategies.y]\n\"rollout.pacing\" = \"batches\"\n\"rollout.batch_size\" = 0\n"
    ));
    assert!(
        e.contains(&format!(
            "t.toml:{line}: strategies.x: rollout.pacng: unknown field"
        )),
        "{e}"
    );
    assert!(e.contains("did you mean \"pacing\""), "{e}");
    assert!(
        e.contains(&format!(
            "t.toml:{}: strategies.y: rollout.batch_size",
            line + 3
        )),
        "{e}"
    );
    let e = load_str(
        "t.toml",
        &format!("{base}[strategies.z]\n\"rollout.pacing\" = \"batches\"\n\"rollout.pacing\" = \"aimd\"\n"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("duplicate key"),
        "TOML itself rejects a repeated key: {e}"
    );
    let e = load_err(&format!("{base}[strategies]\nz = 3\n"));
    assert!(e.contains("strategies.z: expected a table"), "{e}");
}

#[test]
fn grid_errors_name_the_key_line_and_value() {
    let e = spec_err(
        "[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\n\"ca.pca.workers\" = [4, -1, \"x\"]\n",
    );
    assert!(e.contains("sweep.grid.\"ca.pca.workers\": value -1"), "{e}");
    assert!(e.contains("value x"), "{e}");
    let line = SMALL[..SMALL.find("[sweep]").unwrap()].lines().count() + 4;
    assert!(e.contains(&format!("t.toml:{line}:")), "{e}");
    // An unknown path is reported once, not once per value.
    let e = spec_err(
        "[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\n\"ca.pcb.workers\" = [4, 8, 16]\n",
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("no [ca.<name>] named \"pcb\""), "{e}");
    let e =
        spec_err("[sweep]\nfailure = \"recovered > 1\"\n[sweep.grid]\n\"ca.pca.workers\" = [4]\n");
    assert!(
        e.contains("sweep.failure: predicate \"recovered > 1\" does not parse"),
        "{e}"
    );
    let e = spec_err("[sweep]\n[sweep.grid]\n\"ca.pca.workers\" = [4]\n");
    assert!(e.contains("missing `failure`"), "{e}");
    let e =
        spec_err("[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\n\"ca.pca.workers\" = 4\n");
    assert!(e.contains("expected an array of values"), "{e}");
    let e = spec_err(
        "[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\n\"ca.pca.workers\" = [4, 4]\n",
    );
    assert!(e.contains("listed twice"), "{e}");
    let e = spec_err("[sweep]\nfailure = \"not recovered\"\nmax_failure_p = 2\n[sweep.grid]\n\"ca.pca.workers\" = [4]\n");
    assert!(
        e.contains("sweep.max_failure_p: must be a probability"),
        "{e}"
    );
    // Three keys, one grouped: the third would give two points of a line at one x.
    let e = spec_err(
        "[sweep]\nfailure = \"not recovered\"\ngroup = \"strategy\"\n[sweep.grid]\nstrategy = [\"batches\"]\n\"ca.pca.workers\" = [4, 8]\n\"rollout.start\" = [\"1m\", \"2m\"]\n",
    );
    assert!(e.contains("rollout.start is neither x nor in group"), "{e}");
}

#[test]
fn points_the_scenario_rejects_are_reported_before_running() {
    // Each value is valid alone; together the pods do not fit.
    let e = spec_err("[sweep]\nfailure = \"not recovered\"\n[sweep.grid]\n\"cluster.shop.node_group.apps.nodes\" = [8, 4]\n\"cluster.shop.workload.web.replicas\" = [200, 300]\n");
    assert!(e.contains("point 3 (cluster.shop.node_group.apps.nodes=4, cluster.shop.workload.web.replicas=300)"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
