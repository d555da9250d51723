//! cert-manager Certificates in the fleet model: the field case cert-manager#7572 run by
//! the real binary, and the figures it reports.

use serde_json::Value;

use crate::util::{fleetsim, scenario};

fn run(seed: u64) -> Value {
    let s = scenario("field-cert-manager-7572.toml");
    let dir = tempfile::tempdir().unwrap();
    fleetsim(&[
        "run",
        s.to_str().unwrap(),
        "--seed",
        &seed.to_string(),
        "--format",
        "json",
        "--out",
        dir.path().to_str().unwrap(),
    ])
    .expect_code(0)
    .json()
}

fn prod(v: &Value) -> &Value {
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "prod")
        .expect("cluster prod")
}

/// All 40 Certificates become Ready; the time is reported and the same seed gives the
/// same figures; no assumption is active.
#[test]
fn field_cert_manager_7572_all_certificates_ready() {
    let a = run(1);
    let f = prod(&a);
    assert_eq!(f["certificates_ready"], 40, "{f}");
    let t = f["certificates_all_ready_s"].as_f64().expect("all Ready");
    assert!(t > 0.0, "{t}");
    assert_eq!(a["certificates_ready"], 40);
    assert_eq!(a["assumptions"].as_array().map(|x| x.len()), Some(0));
    let b = run(1);
    assert_eq!(prod(&b), f);
}

/// `fleetsim check` judges the scenario's `[expect]`.
#[test]
fn field_cert_manager_7572_expectations_hold() {
    let s = scenario("field-cert-manager-7572.toml");
    fleetsim(&["check", s.to_str().unwrap()]).expect_code(0);
}
