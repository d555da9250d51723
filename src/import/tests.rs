use serde_json::json;

use super::kube::{IntOrPercent, Pdb, Selector};
use super::*;

fn source(items: Value) -> Source {
    Source {
        file: "c.json".into(),
        cluster: "c".into(),
        bytes: serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
            .unwrap(),
    }
}

fn node(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
           "status": {"allocatable": {"pods": "58"}, "nodeInfo": {"osImage": "Amazon Linux 2", "kubeletVersion": "v1.29.3-eks-ae9a62a"}}})
}

fn deployment(ns: &str, name: &str, replicas: u32, labels: Value, spec: Value) -> Value {
    let mut pod = json!({"containers": [{"name": "app", "image": "nginx:1.25"}]});
    if let (Value::Object(p), Value::Object(extra)) = (&mut pod, spec) {
        p.extend(extra);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"replicas": replicas, "selector": {"matchLabels": labels.clone()},
                    "template": {"metadata": {"labels": labels}, "spec": pod}}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn imported(items: Value) -> Imported {
    let i = import(&[source(items)]).unwrap();
    check("t.toml", &i.text).unwrap_or_else(|e| panic!("{e}\n{}", i.text));
    i
}

fn workload<'a>(doc: &'a toml::Table, name: &str) -> &'a toml::Table {
    doc["cluster"]["c"]["workload"][name].as_table().unwrap()
}

#[test]
fn control_plane_keys_are_comments_until_the_schema_has_them() {
    let cp = ControlPlane {
        istio_version: Some((
            "1.15.0".into(),
            "from image docker.io/istio/pilot:1.15.0".into(),
        )),
        ca_mode: Some(("kubernetes-ra".into(), "from env".into())),
        signer: Some(("cert-manager".into(), "from K8S_SIGNER".into())),
        kubernetes_version: Some(("1.29".into(), "kubelets".into())),
        ..ControlPlane::default()
    };
    let off = control_plane_keys(CpTable::Istiod, &cp, "c", false);
    assert_eq!(
        off.lines().next().unwrap(),
        "# version = \"1.15.0\"  # from image docker.io/istio/pilot:1.15.0 (enable once the schema has istiod.version)"
    );
    for t in [CpTable::Istiod, CpTable::Signer, CpTable::Kubernetes] {
        let off = control_plane_keys(t, &cp, "c", false);
        assert!(!off.is_empty());
        assert!(
            off.lines().all(|l| l.is_empty() || l.starts_with('#')),
            "{off}"
        );
    }
    // On: the keys, in their tables, as TOML.
    let doc = format!(
        "[cluster.c.istiod]\n{}{}\n[cluster.c.kubernetes]\n{}",
        control_plane_keys(CpTable::Istiod, &cp, "c", true),
        control_plane_keys(CpTable::Signer, &cp, "c", true),
        control_plane_keys(CpTable::Kubernetes, &cp, "c", true)
    );
    let t: toml::Table = doc.parse().unwrap_or_else(|e| panic!("{e}\n{doc}"));
    let c = &t["cluster"]["c"];
    assert_eq!(c["istiod"]["version"].as_str(), Some("1.15.0"));
    assert_eq!(c["istiod"]["ca_mode"].as_str(), Some("kubernetes-ra"));
    assert_eq!(c["signer"]["kind"].as_str(), Some("cert-manager"));
    assert_eq!(c["kubernetes"]["version"].as_str(), Some("1.29"));
    // Nothing found, nothing written.
    let none = ControlPlane::default();
    for t in [CpTable::Istiod, CpTable::Signer, CpTable::Kubernetes] {
        assert_eq!(control_plane_keys(t, &none, "c", true), "");
    }
}

#[test]
fn the_ca_defaults_quoted_are_the_scenarios() {
    let doc = scenario::load_str("t.toml", "[ca.x]\n[cluster.c]\n", &[]).unwrap();
    let ca = &doc.scenario.cas[0];
    assert!(CA_DEFAULTS.contains(&format!("workers = {}", ca.config.workers)));
    let fresh = scenario::load_str(
        "t.toml",
        "[ca.x]\nworkers = 16\nservice_dist = \"exponential\"\nservice_mean = \"100ms\"\ncontention_sigma = 0\ncoherency_kappa = 0\n[cluster.c]\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        fresh.scenario.cas[0], *ca,
        "CA_DEFAULTS no longer matches the scenario defaults"
    );
}

#[test]
fn input_that_is_not_a_list_is_an_error_naming_file_and_object() {
    let e = list_items("x.json", b"{not json").unwrap_err();
    assert!(
        e.to_string().starts_with("x.json: not JSON (") && e.to_string().contains("line 1"),
        "{e}"
    );
    let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop"}}"#;
    let e = list_items("x.json", pod).unwrap_err().to_string();
    assert!(
        e.contains("x.json: not a v1 List: the document is Pod shop/web"),
        "{e}"
    );
    let e = list_items("x.json", br#"{"kind":"List","items":{}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("items is not an array"), "{e}");
    assert!(list_items("x.json", b"[1]")
        .unwrap_err()
        .to_string()
        .contains("an array"));
    assert_eq!(
        list_items("x.json", br#"{"kind":"NodeList","items":[]}"#).unwrap(),
        Vec::<Value>::new()
    );
}

#[test]
fn reading_stops_past_the_limit() {
    let data = [b' '; 101];
    assert_eq!(read_limited_to(&data[..100], "f", 100).unwrap().len(), 100);
    let e = read_limited_to(&data[..], "f", 100)
        .unwrap_err()
        .to_string();
    assert!(e.contains("f: input is larger than 100 bytes"), "{e}");
    // An endless stream is not read to its end.
    let e = read_limited_to(std::io::repeat(b'x'), "-", 1000).unwrap_err();
    assert_eq!(e.file, "-");
}

#[test]
fn pdb_budgets_round_percentages_up() {
    let pdb = |max: Option<IntOrPercent>, min: Option<IntOrPercent>| Pdb {
        namespace: "n".into(),
        name: "p".into(),
        selector: Some(Selector::default()),
        max_unavailable: max,
        min_available: min,
    };
    use IntOrPercent::{Count, Percent};
    assert_eq!(pdb(Some(Percent(25)), None).allowed_unavailable(10), 3);
    assert_eq!(pdb(Some(Percent(10)), None).allowed_unavailable(3), 1);
    assert_eq!(pdb(Some(Count(2)), None).allowed_unavailable(10), 2);
    assert_eq!(pdb(Some(Count(20)), None).allowed_unavailable(10), 10);
    assert_eq!(pdb(None, Some(Percent(50))).allowed_unavailable(5), 2);
    assert_eq!(pdb(None, Some(Count(3))).allowed_unavailable(5), 2);
    assert_eq!(pdb(None, Some(Count(9))).allowed_unavailable(5), 0);
    assert_eq!(pdb(None, Some(Percent(100))).allowed_unavailable(4), 0);
    assert_eq!(pdb(None, None).allowed_unavailable(4), 3);
}

#[test]
fn image_tags_and_kubelet_versions() {
    assert_eq!(
        istio_release("docker.io/istio/pilot:1.15.0").as_deref(),
        Some("1.15.0")
    );
    assert_eq!(
        istio_release("gcr.io/istio-release/pilot:1.20.3-distroless").as_deref(),
        Some("1.20.3")
    );
    assert_eq!(
        istio_release("localhost:5000/istio/pilot:1.22.1").as_deref(),
        Some("1.22.1")
    );
    assert_eq!(istio_release("docker.io/istio/pilot@sha256:abc"), None);
    assert_eq!(istio_release("docker.io/istio/pilot:latest"), None);
    assert!(is_pilot("localhost:5000/istio/pilot:1.22.1"));
    assert!(is_pilot("istio/pilot"));
    assert!(!is_pilot("docker.io/istio/proxyv2:1.22.1"));
    assert_eq!(
        minor_version("v1.29.3-eks-ae9a62a").as_deref(),
        Some("1.29")
    );
    assert_eq!(minor_version("v1.30.0").as_deref(), Some("1.30"));
    assert_eq!(minor_version("garbage"), None);
    assert_eq!(
        table_name("kube-system-coredns.v2"),
        "kube-system-coredns_v2"
    );
    assert_eq!(table_name(""), "unnamed");
    assert_eq!(table_name(&"a".repeat(300)).len(), 100);
    assert_eq!(toml_str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
}

#[test]
fn injection_follows_the_webhook_and_the_injector() {
    let items = json!([
        node("n1", json!({})),
        namespace("on", json!({"istio-injection": "enabled"})),
        namespace("rev", json!({"istio.io/rev": "1-20"})),
        namespace("off", json!({"istio-injection": "disabled"})),
        namespace("plain", json!({})),
        deployment("on", "a", 1, json!({"app": "a"}), json!({})),
        deployment(
            "on",
            "b",
            1,
            json!({"app": "b", "sidecar.istio.io/inject": "false"}),
            json!({})
        ),
        deployment(
            "on",
            "h",
            1,
            json!({"app": "h"}),
            json!({"hostNetwork": true})
        ),
        deployment("rev", "c", 1, json!({"app": "c"}), json!({})),
        deployment(
            "off",
            "d",
            1,
            json!({"app": "d", "sidecar.istio.io/inject": "true"}),
            json!({})
        ),
        deployment(
            "plain",
            "e",
            1,
            json!({"app": "e", "sidecar.istio.io/inject": "true"}),
            json!({})
        ),
        deployment("plain", "f", 1, json!({"app": "f"}), json!({})),
        deployment(
            "plain",
            "g",
            1,
            json!({"app": "g", "istio.io/rev": "1-20"}),
            json!({})
        ),
        deployment(
            "kube-system",
            "k",
            1,
            json!({"app": "k", "sidecar.istio.io/inject": "true"}),
            json!({})
        ),
    ]);
    let i = imported(items);
    let doc: toml::Table = i.text.parse().unwrap();
    let inj = |n: &str| workload(&doc, n)["injected"].as_bool().unwrap();
    assert!(inj("on-a"));
    assert!(!inj("on-b"));
    assert!(!inj("on-h"));
    assert!(inj("rev-c"));
    assert!(!inj("off-d"));
    assert!(inj("plain-e"));
    assert!(!inj("plain-f"));
    assert!(inj("plain-g"));
    assert!(!inj("kube-system-k"));
    assert!(
        i.text
            .contains("injected = true  # namespace on label istio-injection=enabled"),
        "{}",
        i.text
    );
}

#[test]
fn node_selectors_pin_workloads_and_daemonsets_count_nodes() {
    let mut gpu = node(
        "g1",
        json!({"karpenter.sh/nodepool": "gpu", "topology.kubernetes.io/zone": "eu-west-1a"}),
    );
    gpu["spec"] = json!({"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]});
    let ds = |name: &str, tolerations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"},
               "spec": {"selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"tolerations": tolerations, "containers": [{"name": "c", "image": "x"}]}}}})
    };
    let items = json!([
        node(
            "a1",
            json!({"eks.amazonaws.com/nodegroup": "apps", "topology.kubernetes.io/zone": "eu-west-1a"})
        ),
        node(
            "a2",
            json!({"eks.amazonaws.com/nodegroup": "apps", "topology.kubernetes.io/zone": "eu-west-1b"})
        ),
        gpu,
        deployment(
            "ml",
            "train",
            1,
            json!({"app": "t"}),
            json!({
            "nodeSelector": {"karpenter.sh/nodepool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]})
        ),
        deployment("web", "front", 2, json!({"app": "f"}), json!({})),
        ds("everywhere", json!([{"operator": "Exists"}])),
        ds("untainted", json!([])),
    ]);
    let i = imported(items);
    let doc: toml::Table = i.text.parse().unwrap();
    assert_eq!(
        workload(&doc, "ml-train")["node_group"].as_str(),
        Some("gpu")
    );
    // The untainted nodes are all in one group: pinned by the taint.
    assert_eq!(
        workload(&doc, "web-front")["node_group"].as_str(),
        Some("apps")
    );
    assert_eq!(
        workload(&doc, "kube-system-everywhere-apps")["replicas"].as_integer(),
        Some(2)
    );
    assert_eq!(
        workload(&doc, "kube-system-everywhere-gpu")["replicas"].as_integer(),
        Some(1)
    );
    assert_eq!(
        workload(&doc, "kube-system-untainted")["replicas"].as_integer(),
        Some(2)
    );
    let ng = &doc["cluster"]["c"]["node_group"];
    assert_eq!(ng["apps"]["azs"].as_integer(), Some(2));
    assert_eq!(ng["gpu"]["strategy"].as_str(), Some("karpenter"));
    assert_eq!(i.clusters[0].pods, 1 + 2 + 3 + 2);
}

#[test]
fn malformed_objects_are_skipped_with_a_warning_naming_them() {
    let mut bad = deployment("shop", "web", 1, json!({"app": "w"}), json!({}));
    bad["spec"]["replicas"] = json!("three");
    let items = json!([
        node("n1", json!({})),
        bad,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "shop"}},
        42,
        {"kind": "Node", "metadata": {}},
    ]);
    let i = imported(items);
    let w = i.warnings.join("\n");
    assert!(w.contains("c.json: items[1] (Deployment shop/web): spec.replicas: expected an integer, got \"three\"; skipped"), "{w}");
    assert!(
        w.contains("items[2] (Service shop/s): kind Service is not used by import; skipped"),
        "{w}"
    );
    assert!(w.contains("items[3]: not an object; skipped"), "{w}");
    assert!(
        w.contains("items[4] (Node (no name)): metadata.name: missing; skipped"),
        "{w}"
    );
}

#[test]
fn a_list_without_nodes_is_an_error() {
    let e = import(&[source(json!([]))]).unwrap_err().to_string();
    assert!(e.starts_with("c.json: no Node in the List"), "{e}");
}

#[test]
fn input_text_cannot_escape_its_comment() {
    let items = json!([node(
        "n1",
        json!({"eks.amazonaws.com/nodegroup": "a\nb = 1", "eks.amazonaws.com/nodegroup-image": "ami\n[x]"})
    )]);
    let i = imported(items);
    let doc: toml::Table = i.text.parse().unwrap();
    assert!(doc["cluster"]["c"]["node_group"]
        .as_table()
        .unwrap()
        .contains_key("a_b___1"));
    assert_eq!(
        doc["cluster"]["c"]["node_group"]["a_b___1"]["ami"].as_str(),
        Some("ami_[x]")
    );
}

fn istiod_deployment(env: Value) -> Value {
    deployment(
        "istio-system",
        "istiod",
        2,
        json!({"app": "istiod"}),
        json!({"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.15.0", "env": env}]}),
    )
}

#[test]
fn the_whole_import_in_both_modes_of_the_control_plane_keys() {
    let items = json!([
        node("n1", json!({})),
        node("n2", json!({})),
        istiod_deployment(json!([
            {"name": "EXTERNAL_CA", "value": "ISTIOD_RA_KUBERNETES_API"},
            {"name": "K8S_SIGNER", "value": "clusterissuers.cert-manager.io/istio-ca"},
            {"name": "PILOT_CERT_PROVIDER", "value": "k8s.io/clusterissuers.cert-manager.io/istio-ca"},
        ])),
    ]);
    let off = import_with(&[source(items.clone())], false).unwrap();
    check("t.toml", &off.text).unwrap_or_else(|e| panic!("{e}\n{}", off.text));
    assert!(off.text.contains("# version = \"1.15.0\"  # from image docker.io/istio/pilot:1.15.0 (enable once the schema has istiod.version)"), "{}", off.text);
    assert!(
        off.text
            .contains("# [cluster.c.signer]\n# kind = \"cert-manager\""),
        "{}",
        off.text
    );

    let on = import_with(&[source(items)], true).unwrap();
    let doc: toml::Table = on
        .text
        .parse()
        .unwrap_or_else(|e| panic!("{e}\n{}", on.text));
    let c = &doc["cluster"]["c"];
    assert_eq!(c["istiod"]["version"].as_str(), Some("1.15.0"));
    assert_eq!(c["istiod"]["ca_mode"].as_str(), Some("kubernetes-ra"));
    assert_eq!(
        c["istiod"]["pilot_cert_provider"].as_str(),
        Some("k8s.io/clusterissuers.cert-manager.io/istio-ca")
    );
    assert_eq!(c["istiod"]["replicas"].as_integer(), Some(2));
    assert_eq!(c["signer"]["kind"].as_str(), Some("cert-manager"));
    assert_eq!(c["kubernetes"]["version"].as_str(), Some("1.29"));
    // Until the schema has them, these keys (and only they) are what validation refuses.
    let keys = [
        "cluster.c.istiod.version",
        "cluster.c.istiod.ca_mode",
        "cluster.c.istiod.pilot_cert_provider",
        "cluster.c.signer",
        "cluster.c.kubernetes.version",
    ];
    if let Err(errors) = check("t.toml", &on.text) {
        for line in errors.lines().filter(|l| !l.trim().is_empty()) {
            assert!(keys.iter().any(|k| line.contains(k)), "{line}\n{}", on.text);
        }
    }
}

#[test]
fn the_ca_mode_and_the_signer() {
    let mode = |env: Value, extra: Vec<Value>| {
        let mut items = vec![node("n1", json!({})), istiod_deployment(env)];
        items.extend(extra);
        let i = import_with(&[source(Value::Array(items))], true).unwrap();
        let doc: toml::Table = i.text.parse().unwrap();
        let c = &doc["cluster"]["c"];
        (
            c["istiod"]["ca_mode"].as_str().unwrap().to_string(),
            c.get("signer")
                .map(|s| s["kind"].as_str().unwrap().to_string()),
        )
    };
    assert_eq!(mode(json!([]), vec![]), ("istiod".into(), None));
    assert_eq!(
        mode(
            json!([{"name": "EXTERNAL_CA", "value": "ISTIOD_RA_KUBERNETES_API"}, {"name": "K8S_SIGNER", "value": "example.com/istio"}]),
            vec![]
        ),
        ("kubernetes-ra".into(), Some("controller-runtime".into()))
    );
    assert_eq!(
        mode(
            json!([{"name": "EXTERNAL_CA", "value": "ISTIOD_RA_KUBERNETES_API"}, {"name": "K8S_SIGNER", "value": "awspcaclusterissuers.awspca.cert-manager.io/pca"}]),
            vec![]
        ),
        ("kubernetes-ra".into(), Some("cert-manager".into()))
    );
    assert_eq!(
        mode(
            json!([{"name": "CA_ADDR", "value": "cert-manager-istio-csr.cert-manager.svc:443"}]),
            vec![]
        ),
        // istio-csr without aws-privateca-issuer (the only issuer routed behind it):
        // imported on istiod's CA.
        ("istiod".into(), None)
    );
    let pca_issuer = deployment(
        "cert-manager",
        "aws-privateca-issuer",
        1,
        json!({"app": "pca"}),
        json!({"containers": [{"name": "c", "image": "public.ecr.aws/k1n1h4h4/cert-manager-aws-privateca-issuer:v1.9.1"}]}),
    );
    assert_eq!(
        mode(
            json!([{"name": "CA_ADDR", "value": "cert-manager-istio-csr.cert-manager.svc:443"}]),
            vec![pca_issuer]
        ),
        ("istio-csr".into(), Some("istio-csr".into()))
    );
    let csr = deployment(
        "cert-manager",
        "cert-manager-istio-csr",
        1,
        json!({"app": "csr"}),
        json!({"containers": [{"name": "c", "image": "quay.io/jetstack/cert-manager-istio-csr:v0.9.0"}]}),
    );
    assert_eq!(mode(json!([]), vec![csr]), ("istiod".into(), None));
}

#[test]
fn selectors_affinity_and_tolerations() {
    use super::kube::{Op, Requirement};
    let labels: Labels = [("a", "1"), ("b", "2")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = |key: &str, op: Op, values: &[&str]| Requirement {
        key: key.into(),
        op,
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    assert!(req("a", Op::In, &["1", "3"]).matches(&labels));
    assert!(!req("a", Op::NotIn, &["1"]).matches(&labels));
    assert!(req("c", Op::NotIn, &["1"]).matches(&labels));
    assert!(req("b", Op::Exists, &[]).matches(&labels));
    assert!(req("c", Op::DoesNotExist, &[]).matches(&labels));
    assert!(req("b", Op::Gt, &["1"]).matches(&labels));
    assert!(!req("b", Op::Lt, &["1"]).matches(&labels));
    assert!(!req("c", Op::Gt, &["1"]).matches(&labels));
    assert!(Selector::default().matches(&labels));

    // matchFields on metadata.name, terms ORed, taints tolerated by key or by an empty
    // key with Exists.
    let mut tainted = node("n2", json!({"role": "x"}));
    tainted["spec"] = json!({"taints": [{"key": "k", "value": "v", "effect": "NoExecute"}]});
    let items = json!([
        node("n1", json!({"role": "x"})),
        tainted,
        deployment(
            "d",
            "by-name",
            1,
            json!({"app": "a"}),
            json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
                {"matchExpressions": [{"key": "role", "operator": "In", "values": ["nowhere"]}]}]}}},
            "tolerations": [{"key": "k", "operator": "Equal", "value": "v"}]})
        ),
    ]);
    let o = objects("f", items.as_array().unwrap(), &mut Vec::new());
    let fits: Vec<bool> = o
        .nodes
        .iter()
        .map(|n| o.workloads[0].template.fits(n))
        .collect();
    assert_eq!(fits, [false, true]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Whatever value lands in whatever field, the import never panics and what it
    /// writes is TOML.
    #[test]
    fn any_field_of_any_value_never_breaks_the_output(
        field in 0usize..12,
        value in 0usize..10,
        text in "[a-z\"\\\\\n\t#\\[\\]=% .:/-]{0,12}",
    ) {
        let paths: [&[&str]; 12] = [
            &["metadata", "name"],
            &["metadata", "namespace"],
            &["metadata", "labels"],
            &["spec", "replicas"],
            &["spec", "template", "metadata", "labels"],
            &["spec", "template", "spec", "nodeSelector"],
            &["spec", "template", "spec", "tolerations"],
            &["spec", "template", "spec", "containers"],
            &["spec", "selector"],
            &["spec", "maxUnavailable"],
            &["status", "allocatable", "pods"],
            &["kind"],
        ];
        let values = [
            json!(text),
            json!(-1),
            json!(1.5),
            json!(u64::MAX),
            json!(null),
            json!([text.clone(), 1]),
            json!({text.clone(): text.clone()}),
            json!(true),
            json!(format!("{text}%")),
            json!({"matchLabels": {"app": text.clone()}, "matchExpressions": [{"key": text.clone(), "operator": "In"}]}),
        ];
        let mut items = vec![
            node("n1", json!({"eks.amazonaws.com/nodegroup": "g"})),
            deployment("ns", "d", 2, json!({"app": "a"}), json!({})),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": "p", "namespace": "ns"},
                   "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "a"}}}}),
        ];
        for item in &mut items {
            let mut at = &mut *item;
            let path = paths[field];
            for (i, key) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    if let Value::Object(m) = at {
                        m.insert(key.to_string(), values[value].clone());
                    }
                    break;
                }
                match at.get_mut(*key) {
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
        if let Ok(i) = import(&[source(Value::Array(items))]) {
            proptest::prop_assert!(i.text.parse::<toml::Table>().is_ok(), "{}", i.text);
        }
    }
}
