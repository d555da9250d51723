//! `fleetsim import`: the fixtures of `tests/data/import/` (kubectl's `-o json` of
//! clusters of several shapes, written by `generate.py` there) import into scenarios
//! that validate and run with the fixture's node, pod, PDB and istiod counts, counted
//! here from the JSON itself; malformed input exits 2 naming the file and the object.
//! The fixtures are checked against the Kubernetes OpenAPI schema with
//! `kubernetes-validate` where it is installed (skipped with a line saying so otherwise;
//! `FLEETSIM_REQUIRE_DEPLOY_TOOLS=1` makes that a failure).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::deploy::{validator, OLDEST};
use crate::util::{fleetsim, fleetsim_in, root};

/// The fixtures that import cleanly, and the one with malformed objects.
const FIXTURES: &[&str] = &["eks-managed", "karpenter", "mixed-injection"];
const MALFORMED: &str = "malformed-object";

fn fixture(name: &str) -> PathBuf {
    root()
        .join("tests/data/import")
        .join(format!("{name}.json"))
}

fn items(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["kind"], "List");
    v["items"].as_array().unwrap().clone()
}

/// What the fixture holds, counted from its JSON.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    nodes: u64,
    /// Pods of Deployments and StatefulSets (spec.replicas) and DaemonSets
    /// (status.desiredNumberScheduled: the controller's count of nodes that run one),
    /// istiod apart.
    pods: u64,
    pdbs: u64,
    istiod: u64,
}

fn is_istiod(item: &Value) -> bool {
    item["kind"] == "Deployment"
        && item["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["image"].as_str().unwrap().contains("/pilot:"))
}

/// A well-formed count or percentage (the malformed fixture has neither in places).
fn int_or_percent(v: &Value) -> bool {
    v.is_u64()
        || v.as_str().is_some_and(|s| {
            s.strip_suffix('%')
                .is_some_and(|p| p.parse::<u32>().is_ok())
        })
}

fn counts_of(items: &[Value]) -> Counts {
    let mut c = Counts {
        nodes: 0,
        pods: 0,
        pdbs: 0,
        istiod: 0,
    };
    for item in items {
        match item["kind"].as_str().unwrap() {
            "Node" => c.nodes += 1,
            "Deployment" if is_istiod(item) => {
                c.istiod += item["spec"]["replicas"].as_u64().unwrap()
            }
            // A replicas that is not an integer makes the object malformed: skipped.
            "Deployment" | "StatefulSet" => {
                c.pods += item["spec"]["replicas"].as_u64().unwrap_or(0)
            }
            "DaemonSet" => c.pods += item["status"]["desiredNumberScheduled"].as_u64().unwrap(),
            "PodDisruptionBudget" => {
                let spec = &item["spec"];
                if [&spec["maxUnavailable"], &spec["minAvailable"]]
                    .iter()
                    .any(|v| int_or_percent(v))
                {
                    c.pdbs += 1;
                }
            }
            _ => {}
        }
    }
    c
}

/// The same counts read from a generated scenario (one cluster).
fn counts_in(scenario: &toml::Table) -> Counts {
    let clusters = scenario["cluster"].as_table().unwrap();
    assert_eq!(clusters.len(), 1);
    let cluster = clusters.values().next().unwrap();
    let int = |v: &toml::Value, k: &str| v.get(k).and_then(toml::Value::as_integer).unwrap() as u64;
    let groups = cluster["node_group"].as_table().unwrap();
    let workloads = cluster["workload"].as_table().unwrap();
    let istiod = &cluster["istiod"];
    Counts {
        nodes: groups.values().map(|g| int(g, "nodes")).sum(),
        pods: workloads.values().map(|w| int(w, "replicas")).sum(),
        pdbs: workloads
            .values()
            .filter(|w| w["pdb"].as_bool().unwrap())
            .count() as u64
            + u64::from(
                istiod
                    .get("pdb")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            ),
        istiod: istiod
            .get("replicas")
            .map_or(1, |_| int(istiod, "replicas")),
    }
}

fn import_to(dir: &Path, name: &str) -> (PathBuf, String) {
    let out = dir.join(format!("{name}.toml"));
    let run = fleetsim(&[
        "import",
        fixture(name).to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    (out, run.stderr)
}

/// The first `timeseries.csv` row of `cluster`, by column name.
fn first_row(run_dir: &Path, cluster: &str) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(run_dir.join("timeseries.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row = lines
        .find(|l| l.split(',').nth(1) == Some(cluster))
        .unwrap_or_else(|| panic!("no row for {cluster}"));
    header
        .iter()
        .map(|h| h.to_string())
        .zip(row.split(',').map(str::to_string))
        .collect()
}

#[test]
fn each_fixture_imports_validates_and_runs_with_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES.iter().chain([&MALFORMED]) {
        let expected = counts_of(&items(name));
        assert!(
            expected.nodes > 0 && expected.pods > 0 && expected.istiod > 0,
            "{name}: {expected:?}"
        );
        let (path, stderr) = import_to(dir.path(), name);
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        assert_eq!(
            counts_in(&doc),
            expected,
            "{name}: the scenario's counts\n{text}"
        );
        assert!(
            stderr.contains(&format!(
                "imported cluster {name}: {} nodes in",
                expected.nodes
            )) && stderr.contains(&format!(
                "{} workload pods, {} PDBs, istiod {} replicas",
                expected.pods, expected.pdbs, expected.istiod
            )),
            "{name}: {stderr}"
        );
        let total = expected.pods + expected.istiod;
        let v = fleetsim(&["validate", path.to_str().unwrap()]).expect_code(0);
        assert!(
            v.stdout
                .contains(&format!("(1 clusters, {total} pods, hash")),
            "{}",
            v.stdout
        );
        let out = dir.path().join(format!("run-{name}"));
        let run = fleetsim(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ])
        .expect_code(0);
        assert_eq!(run.json()["pods_total"], total, "{name}");
        let row = first_row(&out, name);
        assert_eq!(row["time_s"], "0");
        assert_eq!(row["nodes_old"], expected.nodes.to_string(), "{name}");
        assert_eq!(row["pods_desired"], total.to_string(), "{name}");
        assert_eq!(row["istiod_ready"], expected.istiod.to_string(), "{name}");
    }
}

#[test]
fn every_value_written_says_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let (path, _) = import_to(dir.path(), name);
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines() {
            let code = line.trim();
            if code.is_empty() || code.starts_with('#') || code.starts_with('[') {
                continue;
            }
            assert!(
                code.contains(" = ") && code.contains("  # "),
                "{name}: no source comment: {line}"
            );
        }
        // What cannot be inferred says so.
        assert!(
            text.contains(
                "Its capacity is not in kubectl's output, so the documented defaults apply"
            ) || text.contains(
                "Its quotas are not in kubectl's output, so the documented defaults apply"
            )
        );
        assert!(text.contains("# target_ami: not in kubectl's output"));
    }
}

#[test]
fn the_shapes_come_through() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| -> toml::Table {
        let (path, _) = import_to(dir.path(), name);
        std::fs::read_to_string(path).unwrap().parse().unwrap()
    };
    let eks = read("eks-managed");
    let c = &eks["cluster"]["eks-managed"];
    assert_eq!(c["node_group"]["system"]["max_pods"].as_integer(), Some(29));
    assert_eq!(c["node_group"]["apps-2024-05"]["azs"].as_integer(), Some(3));
    assert_eq!(
        c["node_group"]["apps-2024-05"]["ami"].as_str(),
        Some("ami-0c2b8ca1dad447f8a")
    );
    assert_eq!(c["istiod"]["node_group"].as_str(), Some("system"));
    assert_eq!(
        c["workload"]["shop-cart"]["pdb_max_unavailable"].as_integer(),
        Some(1)
    );
    assert_eq!(
        c["workload"]["payments-ledger"]["injected"].as_bool(),
        Some(true)
    );
    assert_eq!(c["workload"]["batch-reports"]["pdb"].as_bool(), Some(false));
    let text = std::fs::read_to_string(dir.path().join("eks-managed.toml")).unwrap();
    // Control-plane keys: a substring of the commented and of the emitted form alike
    // (EMIT_CONTROL_PLANE_KEYS).
    assert!(
        text.contains("version = \"1.20.3\"  # from image docker.io/istio/pilot:1.20.3"),
        "{text}"
    );
    assert!(text.contains(
        "ca_mode = \"kubernetes-ra\"  # from istiod env EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API"
    ));
    assert!(text.contains("kind = \"cert-manager\"  # from istiod env K8S_SIGNER=clusterissuers.cert-manager.io/istio-ca"));
    assert!(
        text.contains("HorizontalPodAutoscaler istio-system/istiod: minReplicas 2, maxReplicas 5")
    );

    let k = read("karpenter");
    let c = &k["cluster"]["karpenter"];
    assert_eq!(
        c["node_group"]["default"]["strategy"].as_str(),
        Some("karpenter")
    );
    assert_eq!(
        c["node_group"]["default"]["ami"].as_str(),
        Some("Amazon Linux 2023.4.20240528")
    );
    assert_eq!(c["node_group"]["gpu"]["nodes"].as_integer(), Some(1));
    assert_eq!(
        c["workload"]["ml-trainer"]["node_group"].as_str(),
        Some("gpu")
    );
    assert_eq!(
        c["workload"]["karpenter-karpenter"]["node_group"].as_str(),
        Some("karpenter-system")
    );
    assert_eq!(
        c["workload"]["kube-system-nvidia-device-plugin"]["replicas"].as_integer(),
        Some(1)
    );
    // maxUnavailable 25% of 8 pods.
    assert_eq!(
        c["workload"]["storefront-frontend"]["pdb_max_unavailable"].as_integer(),
        Some(2)
    );

    let m = read("mixed-injection");
    let c = &m["cluster"]["mixed-injection"];
    let injected = |w: &str| c["workload"][w]["injected"].as_bool().unwrap();
    assert!(injected("checkout-api"));
    assert!(!injected("checkout-migrations"));
    assert!(injected("search-indexer"));
    assert!(!injected("legacy-monolith"));
    assert!(injected("tools-grafana"));
    assert!(!injected("tools-prometheus"));
    // minAvailable 50% of 4; maxUnavailable 34% of 3 rounds up to 2.
    assert_eq!(
        c["workload"]["checkout-api"]["pdb_max_unavailable"].as_integer(),
        Some(2)
    );
    assert_eq!(
        c["workload"]["search-indexer"]["pdb_max_unavailable"].as_integer(),
        Some(2)
    );
    assert_eq!(
        c["node_group"]["ungrouped"]["upgrade"].as_bool(),
        Some(false)
    );
    // istio-csr (CA_ADDR) with aws-privateca-issuer: imported on istio-csr, its two
    // replicas, and an AWS Private CA.
    assert_eq!(c["istiod"]["ca_mode"].as_str(), Some("istio-csr"));
    assert_eq!(c["signer"]["kind"].as_str(), Some("istio-csr"));
    assert_eq!(c["signer"]["replicas"].as_integer(), Some(2));
    let ca = c["ca"].as_str().unwrap();
    assert_eq!(m["ca"][ca]["kind"].as_str(), Some("aws-pca"));
}

#[test]
fn malformed_objects_are_skipped_with_a_warning_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, stderr) = import_to(dir.path(), MALFORMED);
    let file = fixture(MALFORMED).display().to_string();
    for want in [
        format!("warning: {file}: items[8] (Deployment web/broken): spec.replicas: expected an integer, got \"three\"; skipped"),
        format!("warning: {file}: items[9] (Service web/site): kind Service is not used by import; skipped"),
        format!("warning: {file}: items[10] (PodDisruptionBudget web/site): spec.maxUnavailable: expected a count or a percentage"),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in\n{stderr}");
    }
}

#[test]
fn malformed_input_exits_2_naming_the_file_and_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read_to_string(fixture("eks-managed")).unwrap();
    std::fs::write(dir.path().join("cut.json"), &full[..full.len() / 2]).unwrap();
    let r = fleetsim_in(dir.path(), &["import", "cut.json"]).expect_code(2);
    assert!(
        r.stderr.contains("error: cut.json: not JSON (") && r.stderr.contains(" line "),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());

    let node = serde_json::to_string(&items("eks-managed")[0]).unwrap();
    std::fs::write(dir.path().join("node.json"), node).unwrap();
    let r = fleetsim_in(dir.path(), &["import", "node.json", "-o", "out.toml"]).expect_code(2);
    assert!(
        r.stderr.contains("error: node.json: not a v1 List: the document is Node ip-10-0-10-31.eu-west-1.compute.internal"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("out.toml").exists());

    std::fs::write(
        dir.path().join("empty.json"),
        r#"{"apiVersion":"v1","kind":"List","items":[]}"#,
    )
    .unwrap();
    let r = fleetsim_in(dir.path(), &["import", "empty.json"]).expect_code(2);
    assert!(
        r.stderr.contains("error: empty.json: no Node in the List"),
        "{}",
        r.stderr
    );

    let r = fleetsim_in(dir.path(), &["import", "missing.json"]).expect_code(2);
    assert!(
        r.stderr.contains("error: missing.json: cannot open"),
        "{}",
        r.stderr
    );
    let r = fleetsim_in(
        dir.path(),
        &["import", "cut.json", "node.json", "--name", "x"],
    )
    .expect_code(2);
    assert!(
        r.stderr.contains("--name names one cluster"),
        "{}",
        r.stderr
    );
}

#[test]
fn several_files_make_a_fleet_and_stdin_takes_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["import".to_string()];
    args.extend(FIXTURES.iter().map(|f| fixture(f).display().to_string()));
    args.extend(["-o".into(), "fleet.toml".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fleetsim_in(dir.path(), &args).expect_code(0);
    let doc: toml::Table = std::fs::read_to_string(dir.path().join("fleet.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let names: Vec<&String> = doc["cluster"].as_table().unwrap().keys().collect();
    assert_eq!(names, FIXTURES);
    assert_eq!(doc["ca"].as_table().unwrap().len(), FIXTURES.len());
    let expected: u64 = FIXTURES
        .iter()
        .map(|f| {
            let c = counts_of(&items(f));
            c.pods + c.istiod
        })
        .sum();
    let v = fleetsim_in(dir.path(), &["validate", "fleet.toml"]).expect_code(0);
    assert!(
        v.stdout.contains(&format!("(3 clusters, {expected} pods")),
        "{}",
        v.stdout
    );
    fleetsim_in(dir.path(), &["run", "fleet.toml", "--out", "run"]).expect_code(0);

    // stdin, named by --name; the same bytes as from the file.
    let out = std::process::Command::new(crate::util::bin())
        .args(["import", "-", "--name", "karpenter"])
        .stdin(std::fs::File::open(fixture("karpenter")).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_file = fleetsim(&["import", fixture("karpenter").to_str().unwrap()]).expect_code(0);
    // The same scenario but for where it says it came from.
    let parse = |text: &str| {
        let mut t: toml::Table = text.parse().unwrap();
        t["scenario"].as_table_mut().unwrap().remove("description");
        t
    };
    assert_eq!(
        parse(&String::from_utf8(out.stdout).unwrap()),
        parse(&from_file.stdout)
    );
}

/// Each fixture's objects as separate files (the validator has no schema for `List`).
fn split(dir: &Path, name: &str) -> Vec<PathBuf> {
    items(name)
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = dir.join(format!("{name}-{i:02}.json"));
            std::fs::write(&p, serde_json::to_vec_pretty(item).unwrap()).unwrap();
            p
        })
        .collect()
}

#[test]
fn the_fixtures_are_valid_kubernetes_objects() {
    let Some(v) = validator() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in FIXTURES {
        files.extend(split(dir.path(), name));
    }
    for version in [Some(OLDEST), None] {
        let out = v.validate(version, &files);
        assert!(
            out.status.success(),
            "kubernetes-validate {version:?} rejects a fixture\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The malformed fixture: only the object import skips as malformed fails the schema
    // ("half" is a string, which the schema allows for maxUnavailable).
    let bad = split(dir.path(), MALFORMED);
    let out = v.validate(None, &bad);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("malformed-object-08.json") && errors[0].contains("deployment/broken"),
        "{text}"
    );
}

#[test]
fn import_is_deterministic() {
    let a = fleetsim(&["import", fixture("mixed-injection").to_str().unwrap()]).expect_code(0);
    let b = fleetsim(&["import", fixture("mixed-injection").to_str().unwrap()]).expect_code(0);
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.starts_with("# Written by `fleetsim import "));
}

#[test]
fn the_readme_walkthrough_works() {
    // README "Start from your own fleet": import -> ca fit -> run -> sweep.
    let dir = tempfile::tempdir().unwrap();
    let eks = fixture("eks-managed").display().to_string();
    let karpenter = fixture("karpenter").display().to_string();
    fleetsim_in(
        dir.path(),
        &["import", &eks, &karpenter, "-o", "fleet.toml"],
    )
    .expect_code(0);
    let loadtest = root()
        .join("tests/data/loadtest-ca.csv")
        .display()
        .to_string();
    fleetsim_in(
        dir.path(),
        &[
            "ca",
            "fit",
            &loadtest,
            "--name",
            "eks-managed-ca",
            "--workers",
            "64",
            "-o",
            "fit",
        ],
    )
    .expect_code(0);
    // "paste fit/stanza.toml over the [ca.eks-managed-ca] table".
    let fleet = std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap();
    let stanza = std::fs::read_to_string(dir.path().join("fit/stanza.toml")).unwrap();
    assert!(stanza.contains("[ca.eks-managed-ca]\n"), "{stanza}");
    let fleet = fleet.replace("[ca.eks-managed-ca]\n", &stanza) + "\n[sweep]\nseeds = 2\nfailure = \"not recovered or time_to_recover_s > 20m\"\n[sweep.grid]\n\"ca.eks-managed-ca.rate_limit_per_s\" = [0.05, 0.1, 0.2, 0.5, 1]\n";
    std::fs::write(dir.path().join("fleet.toml"), fleet).unwrap();
    fleetsim_in(dir.path(), &["run", "fleet.toml"]).expect_code(0);
    let s = fleetsim_in(dir.path(), &["sweep", "fleet.toml"]).expect_code(0);
    let row = |rate: &str| {
        s.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(rate))
            .unwrap_or_else(|| panic!("no row {rate}\n{}", s.stdout))
            .to_string()
    };
    // As the README says: both fixture clusters sign with istiod's built-in CA, so the
    // external CA's rate decides nothing: clean at every rate.
    for rate in ["0.05", "0.1", "0.2", "0.5", "1"] {
        assert!(row(rate).contains(" 0/2 "), "{}", s.stdout);
    }
}

#[test]
fn a_file_over_256_mib_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    // Sparse: no disk is used, and import must not read it.
    std::fs::File::create(&big)
        .unwrap()
        .set_len((256 << 20) + 1)
        .unwrap();
    let r = fleetsim_in(dir.path(), &["import", "big.json"]).expect_code(2);
    assert!(
        r.stderr
            .contains("error: big.json: file is 268435457 bytes, larger than 268435456 bytes"),
        "{}",
        r.stderr
    );
}
