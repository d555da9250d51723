//! Loader tests: defaults, expansion, order, errors with lines, overrides, and
//! property tests that no input panics.

use proptest::prelude::{
    any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig,
    Strategy as _,
};

use super::raw::{Shape, TableSchema, DOCUMENT};
use super::*;
use crate::ca::{CaConfig, RateLimit, ServiceTime};
use crate::engine::SimTime;

mod sections;

const FULL: &str = include_str!("../../tests/data/full.toml");
const MINIMAL: &str = "[ca.pca]\n[cluster.a]\n";

fn load_ok(text: &str) -> ScenarioDocument {
    load_str("t.toml", text, &[]).unwrap_or_else(|e| panic!("expected valid:\n{e}"))
}

fn load_err(text: &str) -> String {
    match load_str("t.toml", text, &[]) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn sets(list: &[&str]) -> Vec<Override> {
    list.iter().map(|s| Override::parse(s).unwrap()).collect()
}

#[test]
fn minimal_scenario_gets_every_default() {
    let doc = load_ok(MINIMAL);
    let s = &doc.scenario;
    let mut expected = Scenario::empty("t");
    expected.cas.push(CaSpec {
        name: "pca".into(),
        config: CaConfig::default(),
        kind: IssuerKind::Usl,
        contention_source: None,
    });
    expected
        .clusters
        .push(ClusterSpec::with_defaults("a", None));
    expected.templates.push(ClusterTemplate {
        name: "a".into(),
        count: 1,
        clusters: vec![0],
    });
    assert_eq!(s, &expected);
    assert_eq!(doc.source, "t.toml");
    assert_eq!(doc.hash.len(), 16);
    assert!(doc.hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(doc.sweep().is_none() && doc.expectations().is_none());
}

#[test]
fn full_example_loads_with_its_values() {
    let doc = load_str("tests/data/full.toml", FULL, &[]).unwrap();
    let s = &doc.scenario;
    assert_eq!(s.name, "full-example");
    assert_eq!(s.seed, 42);
    assert_eq!(s.horizon, SimTime::from_secs(7200));
    assert_eq!(s.cas.len(), 5);
    assert_eq!(
        s.cas[0].config.rate_limit,
        Some(RateLimit {
            rate_per_s: 25.0,
            burst: 25
        })
    );
    assert_eq!(
        s.cas[1].config.service,
        ServiceTime::LogNormal {
            median: SimTime::from_millis(80),
            p99: SimTime::from_millis(400)
        }
    );
    assert_eq!(s.clusters.len(), 14);
    let mesh = s.clusters.iter().find(|c| c.name == "mesh").unwrap();
    assert_eq!(mesh.istiod.ca_mode, CaMode::IstioCsr);
    assert_eq!(mesh.signer.kind, SignerKind::IstioCsr);
    assert_eq!(mesh.signer.replicas, 2);
    assert!(!mesh.signer.preserve_certificate_requests);
    assert_eq!(
        mesh.signer.max_certificate_duration,
        SimTime::from_secs(3600)
    );
    let pay = &s.clusters[0];
    assert_eq!(pay.name, "payments");
    assert_eq!(pay.istiod.replicas, 40);
    assert_eq!(
        pay.node_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["general", "spot", "system"]
    );
    assert_eq!(pay.node_groups[0].max_unavailable, MaxUnavailable::Count(2));
    assert_eq!(
        pay.node_groups[1].max_unavailable,
        MaxUnavailable::Percent(10.0)
    );
    assert_eq!(pay.node_groups[1].strategy, UpdateStrategy::Karpenter);
    assert_eq!(pay.node_groups[2].target_ami, None);
    assert_eq!(pay.workloads[1].pdb_max_unavailable, None);
    assert_eq!(pay.certificates[0].count, 40);
    assert_eq!(pay.certificates[0].issuer, pay.ca);
    assert_eq!(pay.certificates[0].created_at, SimTime::from_secs(600));
    assert_eq!(s.clusters[1].name, "web-00");
    assert_eq!(s.clusters[12].name, "web-11");
    assert_eq!(s.clusters[12].ca, Some(1));
    assert_eq!(s.rollout.waves, [1, 5]);
    assert!(matches!(s.rollout.pacing, Pacing::Aimd { .. }));
    assert_eq!(s.rollout.istiod_replicas_during, Some(2));
    assert_eq!(s.rollout.node_groups, NodeGroupOrder::Together);
    assert_eq!(s.rollout.poll_interval, SimTime::from_secs(30));
    assert_eq!(s.interventions.len(), 6);
    assert_eq!(s.interventions[1].clusters, [0, 4]);
    assert_eq!(s.interventions[4].clusters, (1..13).collect::<Vec<_>>());
    assert!(s.interventions[2].clusters.is_empty());
    assert_eq!(
        s.interventions[5].action,
        Action::SetCa {
            ca: 0,
            workers: Some(32),
            rate_limit: Some(Some(RateLimit {
                rate_per_s: 50.0,
                burst: 100
            }))
        }
    );
    assert_eq!(s.pods_total(), 1263);
    assert!(doc.sweep().is_some() && doc.expectations().is_some());
}

/// Every leaf of the schema appears somewhere in `tests/data/full.toml` (named tables
/// count as one wildcard), so the example stays complete as the schema grows.
#[test]
fn full_example_uses_every_key() {
    fn schema_paths(s: &TableSchema, prefix: &str, out: &mut Vec<String>) {
        for f in s.fields() {
            let p = format!("{prefix}{f}");
            match s.shape(f) {
                Some(Shape::Table(t)) => schema_paths(t, &format!("{p}."), out),
                Some(Shape::Map(t)) => schema_paths(t, &format!("{p}.*."), out),
                _ => out.push(p),
            }
        }
    }
    fn doc_paths(t: &toml::Table, s: &TableSchema, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            let p = format!("{prefix}{k}");
            match (s.shape(k), v) {
                (Some(Shape::Table(st)), toml::Value::Table(sub)) => {
                    doc_paths(sub, st, &format!("{p}."), out)
                }
                (Some(Shape::Map(st)), toml::Value::Table(sub)) => {
                    for e in sub.values() {
                        if let toml::Value::Table(et) = e {
                            doc_paths(et, st, &format!("{p}.*."), out);
                        }
                    }
                }
                _ => out.push(p),
            }
        }
    }
    let mut want = Vec::new();
    schema_paths(&DOCUMENT, "", &mut want);
    let doc: toml::Table = toml::from_str(FULL).unwrap();
    let mut have = Vec::new();
    doc_paths(&doc, &DOCUMENT, "", &mut have);
    let missing: Vec<_> = want.iter().filter(|p| !have.contains(p)).collect();
    assert!(missing.is_empty(), "full.toml lacks {missing:?}");
    assert!(want.len() > 90, "{}", want.len());
}

#[test]
fn names_expand_and_keep_declaration_order() {
    let doc = load_ok(
        "[ca.pca]\n[cluster.zeta]\n[cluster.alpha]\ncount = 3\n[cluster.mid]\ncount = 11\n",
    );
    let names: Vec<_> = doc
        .scenario
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names[..5],
        ["zeta", "alpha-0", "alpha-1", "alpha-2", "mid-00"]
    );
    assert_eq!(names[14], "mid-10");
    let t = &doc.scenario.templates;
    assert_eq!(
        t.iter()
            .map(|t| (t.name.as_str(), t.count))
            .collect::<Vec<_>>(),
        [("zeta", 1), ("alpha", 3), ("mid", 11)]
    );
    assert_eq!(t[1].clusters, [1, 2, 3]);
    assert_eq!(doc.scenario.clusters_named("alpha"), Some(vec![1, 2, 3]));
    assert_eq!(doc.scenario.clusters_named("mid-03"), Some(vec![7]));
    assert_eq!(doc.scenario.clusters_named("nope"), None);
    let e = load_err("[ca.pca]\n[cluster.web]\ncount = 2\n[cluster.web-1]\n");
    assert!(
        e.contains("t.toml:4: cluster.web-1: duplicate cluster name \"web-1\""),
        "{e}"
    );
}

#[test]
fn errors_name_file_line_path_and_value_and_all_are_reported() {
    let text = "[ca.pca]\nworkers = 0\n\n[cluster.payments]\nca = \"pcx\"\n\n[cluster.payments.istiod]\nreplicas = 0\nreplica = 2\n";
    let e = load_err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "t.toml:2: ca.pca.workers: must be >= 1, got 0",
            "t.toml:5: cluster.payments.ca: no CA named \"pcx\" (defined: pca); did you mean \"pca\"?",
            "t.toml:8: cluster.payments.istiod.replicas: must be >= 1, got 0",
            "t.toml:9: cluster.payments.istiod.replica: unknown field; did you mean \"replicas\"?",
        ],
        "{e}"
    );
}

#[test]
fn syntax_and_encoding_errors_have_columns() {
    let e = load_err("[ca.pca]\nworkers = = 3\n");
    assert!(e.starts_with("t.toml:2:"), "{e}");
    assert!(e.contains("TOML syntax error"), "{e}");
    let e = load_bytes("b.toml", b"[ca.pca]\nworkers = \"\xff\"\n", &[]).unwrap_err();
    assert_eq!(e.errors()[0].kind, ErrorKind::Encoding);
    assert!(
        e.to_string().starts_with("b.toml:2:12: not valid UTF-8"),
        "{e}"
    );
}

#[test]
fn overrides_replace_and_create_defaults() {
    let ov = sets(&[
        "cluster.a.istiod.replicas=3",
        "ca.pca.service_mean=250ms",
        "rollout.pacing=\"batches\"",
        "scenario.seed=7",
    ]);
    let doc = load_str("t.toml", MINIMAL, &ov).unwrap();
    assert_eq!(doc.scenario.clusters[0].istiod.replicas, 3);
    assert_eq!(
        doc.scenario.cas[0].config.service,
        ServiceTime::Exponential {
            mean: SimTime::from_millis(250)
        }
    );
    assert_eq!(
        doc.scenario.rollout.pacing,
        Pacing::Batches {
            size: 50,
            interval: SimTime::from_secs(30)
        }
    );
    assert_eq!(doc.scenario.seed, 7);
    assert!(doc.resolved_toml.contains("replicas = 3"));
    assert_ne!(doc.hash, load_ok(MINIMAL).hash);
}

#[test]
fn override_errors_name_the_set() {
    let e = load_str("t.toml", MINIMAL, &sets(&["cluster.a.istiod.replica=3"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.toml (--set cluster.a.istiod.replica=3): cluster.a.istiod.replica: unknown field; did you mean \"replicas\"?"
    );
    let e = load_str("t.toml", MINIMAL, &sets(&["cluster.a.istiod.replicas=0"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.toml (--set cluster.a.istiod.replicas=0): cluster.a.istiod.replicas: must be >= 1, got 0"
    );
    let e = load_str("t.toml", MINIMAL, &sets(&["cluster.b.count=2"])).unwrap_err();
    assert!(
        e.to_string().contains("no [cluster.<name>] named \"b\""),
        "{e}"
    );
}

#[test]
fn sweep_points_equal_loading_with_the_same_overrides() {
    let base = load_str("full.toml", FULL, &sets(&["scenario.seed=5"])).unwrap();
    let point = sets(&[
        "ca.pca-east.workers=8",
        "cluster.payments.istiod.replicas=1",
    ]);
    let mut all = sets(&["scenario.seed=5"]);
    all.extend(point.clone());
    let direct = load_str("full.toml", FULL, &all).unwrap();
    let derived = base.with_overrides(&point).unwrap();
    assert_eq!(derived.scenario, direct.scenario);
    assert_eq!(derived.hash, direct.hash);
    assert_eq!(base.scenario_with(&point).unwrap(), direct.scenario);
    assert_eq!(direct.scenario.seed, 5);
    assert_eq!(direct.scenario.cas[0].config.workers, 8);
    // A bad point names its override; the base's own overrides still locate theirs.
    let e = base
        .scenario_with(&sets(&["ca.pca-east.workers=0"]))
        .unwrap_err();
    assert!(
        e.to_string().contains("(--set ca.pca-east.workers=0)"),
        "{e}"
    );
    // Typed values from a sweep grid.
    let typed = Override::new("rollout.waves", toml::Value::Array(vec![2.into()])).unwrap();
    assert_eq!(base.scenario_with(&[typed]).unwrap().rollout.waves, [2]);
}

#[test]
fn resolved_toml_is_canonical() {
    let doc = load_ok(FULL);
    let again = load_ok(&doc.resolved_toml);
    assert_eq!(again.resolved_toml, doc.resolved_toml);
    assert_eq!(again.hash, doc.hash);
    let mut s = again.scenario.clone();
    s.name = doc.scenario.name.clone();
    assert_eq!(s, doc.scenario);
}

#[test]
fn strategy_dependent_and_action_defaults() {
    let doc = load_ok(
        "[ca.pca]\nrate_limit_per_s = 2.5\n[cluster.a.node_group.k]\nstrategy = \"karpenter\"\n\
         [intervention.cap]\nat = \"1m\"\naction = \"set_ca\"\nrate_limit_per_s = 0\n\
         [intervention.restart]\nat = \"2m\"\naction = \"restart_crashlooping\"\n",
    );
    let s = doc.scenario;
    assert_eq!(
        s.cas[0].config.rate_limit,
        Some(RateLimit {
            rate_per_s: 2.5,
            burst: 3
        })
    );
    assert_eq!(
        s.clusters[0].node_groups[0].max_unavailable,
        MaxUnavailable::Percent(10.0)
    );
    assert_eq!(
        s.interventions[0].action,
        Action::SetCa {
            ca: 0,
            workers: None,
            rate_limit: Some(None)
        }
    );
    assert_eq!(
        s.interventions[1].action,
        Action::RestartCrashlooping {
            batch_size: 20,
            interval: SimTime::from_secs(30),
            pods: RestartPods::Crashlooping,
        }
    );
}

/// `rollout.poll_interval`: the waiter's 30 s unless set.
#[test]
fn poll_interval_defaults_to_the_waiters_30_s() {
    assert_eq!(
        load_ok(MINIMAL).scenario.rollout.poll_interval,
        SimTime::from_secs(30)
    );
    let set = load_ok("[ca.pca]\n[cluster.a]\n[rollout]\npoll_interval = \"1m30s\"\n");
    assert_eq!(set.scenario.rollout.poll_interval, SimTime::from_secs(90));
}

#[test]
fn semantic_checks() {
    for (text, want) in [
        ("[ca.pca]\nservice_dist = \"lognormal\"\nservice_median = \"1s\"\nservice_p99 = \"500ms\"\n[cluster.a]\n", "t.toml:4: ca.pca.service_p99: must be > service_median (1s)"),
        ("[ca.pca]\n", "t.toml: cluster: no cluster"),
        ("[ca.pca]\n[cluster.a.node_group.g]\nmax_unavailable = 1\nmax_unavailable_percent = 5\n", "t.toml:2: cluster.a.node_group.g: give max_unavailable"),
        ("[ca.pca]\n[cluster.a.node_group.g]\nlaunch_min = \"2m\"\nlaunch_max = \"1m\"\n", "t.toml:4: cluster.a.node_group.g.launch_max: must be >= launch_min (2m), got 1m"),
        ("[ca.pca]\n[cluster.a.webhook]\ntimeout = \"31s\"\n", "t.toml:3: cluster.a.webhook.timeout: must be between 1s and 30s"),
        ("[ca.pca]\n[cluster.a.workload.w]\nreplicas = 200\n", "t.toml:2: cluster.a: pods do not fit: 200 workload replicas + 1 istiod replicas = 201 pods > 174 pod slots"),
        ("[ca.pca]\n[cluster.a]\ncount = 20000\n", "t.toml:3: cluster.a.count: must be <= 10000 (limit"),
        ("[ca.pca]\n[cluster.a]\ncount = 5000\n[cluster.a.workload.w]\nreplicas = 5000\n[cluster.a.node_group.g]\nnodes = 100\n", "the fleet has 25005000 pods after expanding `count`; at most 20000000"),
        ("[scenario]\nhorizon = \"31d\"\n[ca.pca]\n[cluster.a]\n", "t.toml:2: scenario.horizon: must be <= 30d"),
        ("[scenario]\nhorizon = \"30d\"\nsample_interval = \"1s\"\n[ca.pca]\n[cluster.a]\n", "2592000 samples; at most 1000000"),
        ("[ca.pca]\ncontention_sigma = nan\n[cluster.a]\n", "t.toml:2: ca.pca.contention_sigma: must be a finite number, got nan"),
        ("[ca.pca]\nrate_limit_per_s = inf\n[cluster.a]\n", "must be a finite number, got inf"),
        ("[ca.pca]\n[cluster.a]\n[intervention.i]\naction = \"pause_rollout\"\n", "t.toml:3: intervention.i: missing trigger"),
        ("[ca.pca]\n[cluster.a]\n[intervention.i]\nat = \"1m\"\naction = \"pause_rollout\"\nclusters = [\"b\"]\n", "t.toml:6: intervention.i.clusters[0]: no cluster named \"b\""),
        ("[ca.pca]\n[cluster.a]\n[intervention.i]\nwhen = \"queue > 3\"\naction = \"pause_rollout\"\n", "t.toml:4: intervention.i.when: unknown metric \"queue\""),
        ("[ca.pca]\n[cluster.a]\n[intervention.i]\nat = \"1m\"\naction = \"delete_failed_csrs\"\nreplicas = 3\n", "t.toml:6: intervention.i.replicas: does not apply to action \"delete_failed_csrs\""),
        ("[ca.pca]\n[cluster.a]\n[intervention.i]\nat = \"1m\"\naction = \"scale_istiod\"\nreplicas = 1\npods = \"not_ready\"\n", "t.toml:7: intervention.i.pods: does not apply to action \"scale_istiod\""),
        ("[ca.pca]\n[cluster.a]\n[intervention.i]\nat = \"1m\"\naction = \"restart_crashlooping\"\npods = \"all\"\n", "t.toml:6: intervention.i.pods: unknown value \"all\"; expected one of: crashlooping, not_ready"),
        ("[ca.pca]\n[cluster.\"a b\"]\n", "t.toml:2: cluster.\"a b\": bad name \"a b\""),
        ("[ca.pca]\n[cluster.a]\n[rollout]\nwaves = [0]\n", "t.toml:4: rollout.waves[0]: must be >= 1, got 0"),
        ("[ca.pca]\n[cluster.a]\n[rollout]\npoll_interval = \"0s\"\n", "t.toml:4: rollout.poll_interval: must be > 0, got \"0s\""),
        ("[ca.pca]\n[cluster.a]\n[rollout]\npoll_interval = \"-30s\"\n", "t.toml:4: rollout.poll_interval: invalid duration \"-30s\""),
        ("ca = 3\n[cluster.a]\n", "t.toml:1: ca: expected tables [ca.<name>], got integer 3"),
        ("[ca.pca]\n[cluster.a]\nistiod = 1\n", "t.toml:3: cluster.a.istiod: expected a table [cluster.a.istiod], got integer 1"),
        ("[ca]\npca = 1\n[cluster.a]\n", "t.toml:2: ca.pca: expected a table [ca.pca] describing a CA, got integer 1"),
    ] {
        let e = load_err(text);
        assert!(e.contains(want), "want {want:?} in:\n{e}\nfor:\n{text}");
    }
}

#[test]
fn absurd_inputs_are_errors_not_panics() {
    let deep_array = format!("x = {}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_table = format!("[sweep]\nx = {}1{}", "{a = ".repeat(5000), "}".repeat(5000));
    let long_key = format!("[ca.pca]\n[cluster.a]\n{} = 1\n", "k".repeat(100_000));
    for (text, kind, want) in [
        ("", ErrorKind::Invalid, "t.toml: cluster: no cluster"),
        ("\u{feff}", ErrorKind::Invalid, "t.toml: cluster: no cluster"),
        (
            "[ca.pca]\nworkers = 99999999999999999999999\n[cluster.a]\n",
            ErrorKind::Syntax,
            "t.toml:2:11: ca.pca.workers: integer 99999999999999999999999 is out of range",
        ),
        (
            "[ca.pca]\nworkers = -9223372036854775808\n[cluster.a]\n",
            ErrorKind::Invalid,
            "t.toml:2: ca.pca.workers: must be >= 1, got -9223372036854775808",
        ),
        (
            "[ca.pca]\nservice_mean = \"99999999999999999999d\"\n[cluster.a]\n",
            ErrorKind::Type,
            "t.toml:2: ca.pca.service_mean: duration \"99999999999999999999d\" is too large",
        ),
        (
            "[ca.pca]\nservice_mean = 1e308\n[cluster.a]\n",
            ErrorKind::Type,
            "t.toml:2: ca.pca.service_mean: invalid duration 1000",
        ),
        (
            "[[ca]]\n[[cluster]]\n",
            ErrorKind::Type,
            "t.toml:1: ca: expected tables [ca.<name>], got array",
        ),
        (
            "[ca.pca]\n[cluster.a]\n[cluster.a.node_group.g]\nnodes = 100000\nmax_pods = 1000\n[cluster.a.workload.w]\nreplicas = 2000000000\n",
            ErrorKind::Invalid,
            "t.toml:7: cluster.a.workload.w.replicas: must be <= 20000000 (limit",
        ),
        (deep_array.as_str(), ErrorKind::Syntax, "t.toml:1:85: TOML syntax error: cannot recurse further"),
        (deep_table.as_str(), ErrorKind::Syntax, "t.toml:2:405: TOML syntax error: cannot recurse further"),
        (long_key.as_str(), ErrorKind::UnknownField, "t.toml:3: cluster.a.kkkkkkkk"),
    ] {
        let errors = load_str("t.toml", text, &[])
            .expect_err(&text.chars().take(80).collect::<String>());
        let shown = errors.to_string();
        assert!(shown.contains(want), "want {want:?} in:\n{}", &shown[..shown.len().min(400)]);
        assert!(
            errors.iter().any(|e| e.kind == kind),
            "no {kind:?} error in:\n{}",
            &shown[..shown.len().min(400)]
        );
        for e in errors.iter() {
            assert_eq!(e.file, "t.toml");
        }
    }
}

#[test]
fn error_count_is_capped() {
    let text: String = (0..500).map(|i| format!("junk{i} = 1\n")).collect();
    let e = load_str("t.toml", &text, &[]).unwrap_err();
    assert_eq!(e.len(), limits::MAX_ERRORS + 1);
    assert!(e.to_string().ends_with("more errors not shown"), "{e}");
    let deep = format!("sweep.{}=1", vec!["a"; 100].join("."));
    assert!(Override::parse(&deep).is_err());
}

fn leaf_paths(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(sub) => leaf_paths(sub, &p, out),
            _ => out.push(p),
        }
    }
}

fn value_strategy() -> impl proptest::strategy::Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        (-3i64..1000).prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("true".to_string()),
        "[0-9]{1,25}(ns|us|ms|s|m|h|d)?",
        "\"[a-z0-9_.<>= -]{0,12}\"",
        "[a-z_]{0,12}",
        "\\[[0-9, ]{0,12}\\]",
        "\\{ ?[a-z]{1,3} = [0-9]{1,3} ?\\}",
        ".{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random `--set` values on known paths (and mangled paths) never panic, and a
    /// success is a scenario whose resolved TOML reloads to the same hash.
    #[test]
    fn random_sets_never_panic(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), value_strategy(), 0u8..8), 1..4),
    ) {
        let doc: toml::Table = toml::from_str(FULL).unwrap();
        let mut paths = Vec::new();
        leaf_paths(&doc, "", &mut paths);
        let mut overrides = Vec::new();
        for (idx, value, mangle) in picks {
            let mut path = paths[idx.index(paths.len())].clone();
            match mangle {
                0 => path.push('x'),
                1 => path = format!("{path}.deeper"),
                2 => path = path.rsplit_once('.').map(|(p, _)| p.to_string()).unwrap_or(path),
                _ => {}
            }
            if let Ok(o) = Override::parse(&format!("{path}={value}")) {
                overrides.push(o);
            }
        }
        if let Ok(d) = load_str("full.toml", FULL, &overrides) {
            let again = load_str("full.toml", &d.resolved_toml, &[]).unwrap();
            prop_assert_eq!(again.hash, d.hash);
        }
    }

    /// Arbitrary bytes never panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = load_bytes("fuzz.toml", &bytes, &[]);
    }

    /// Small edits of a valid file never panic, and errors always name the file.
    #[test]
    fn mutated_full_example_never_panics(
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        insert in ".{0,8}",
    ) {
        let mut text = FULL.to_string();
        let mut i = at.index(text.len());
        while !text.is_char_boundary(i) { i -= 1; }
        let mut j = (i + cut).min(text.len());
        while !text.is_char_boundary(j) { j -= 1; }
        text.replace_range(i..j, &insert);
        if let Err(e) = load_str("m.toml", &text, &[]) {
            for err in e.iter() {
                prop_assert!(err.to_string().starts_with("m.toml"));
            }
        }
    }
}

/// Regression: nested keys in errors and assumption keys were quoted as one segment
/// (`cluster.a."istiod.ca_mode"`).
#[test]
fn nested_key_paths_are_dotted_not_quoted() {
    let e =
        load_err("[ca.pca]\n[cluster.a.istiod]\nca_mode = \"kubernetes-ra\"\nversion = \"1.15\"\n");
    assert!(e.contains("cluster.a.istiod.version:"), "{e}");
    let doc = load_ok(
        "[ca.pca]\n[cluster.a]\nca = \"pca\"\n[cluster.a.istiod]\ndelete_csr_on_give_up = false\n",
    );
    let keys: Vec<&str> = doc
        .scenario
        .assumptions
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(keys, ["cluster.a.istiod.delete_csr_on_give_up"]);
}

/// `istiod.pilot_cert_provider`: `k8s.io/<signer>` needs istiod's RA; other values are
/// named in the error.
#[test]
fn pilot_cert_provider_needs_the_ra_and_a_known_value() {
    let ok = load_str(
        "t.toml",
        "[ca.pca]\n[cluster.a]\nca = \"pca\"\n[cluster.a.istiod]\nversion = \"1.15.0\"\npilot_cert_provider = \"k8s.io/clusterissuers.cert-manager.io/istio-system\"\n[cluster.a.kubernetes]\nversion = \"1.27\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        ok.scenario.clusters[0].istiod.cert_provider,
        IstiodCertProvider::KubernetesSigner {
            signer: "clusterissuers.cert-manager.io/istio-system".into()
        }
    );
    let e = load_err("[cluster.a.istiod]\npilot_cert_provider = \"k8s.io/x\"\n");
    assert!(e.contains("cluster.a.istiod.pilot_cert_provider"), "{e}");
    assert!(e.contains("kubernetes-ra"), "{e}");
    let e = load_err("[cluster.a.istiod]\npilot_cert_provider = \"kubernetes\"\n");
    assert!(e.contains("cluster.a.istiod.pilot_cert_provider"), "{e}");
    assert!(e.contains("got \"kubernetes\""), "{e}");
}

/// A pod names its workload in 16 bits: one cluster holds at most 65 535 workloads
/// (istiod is the 65 536th), a clear error beyond, not a panic in the model.
#[test]
fn a_cluster_with_more_than_65535_workloads_is_an_error() {
    let scenario = |n: usize| {
        let mut text = String::from(
            "[ca.pca]\n[cluster.a]\n[cluster.a.node_group.g]\nnodes = 100\nmax_pods = 1000\n",
        );
        for i in 0..n {
            text.push_str(&format!("[cluster.a.workload.w{i}]\nreplicas = 1\n"));
        }
        text
    };
    let e = load_err(&scenario(65_536));
    assert!(
        e.contains(
            "t.toml:6: cluster.a.workload: 65536 workloads; at most 65535 in one cluster (limit"
        ),
        "{}",
        &e[..e.len().min(400)]
    );
    let ok = load_str("t.toml", &scenario(65_535), &[]).expect("65 535 workloads fit");
    assert_eq!(ok.scenario.clusters[0].workloads.len(), 65_535);
}
