//! The language on a vocabulary of its own: parsing, evaluation, errors with columns,
//! nesting limits, assertions.

use super::*;

const NAMES: &[(&str, Kind)] = &[
    ("recovered", Kind::Bool),
    ("metastable", Kind::Bool),
    ("peak_crashloop_pods", Kind::Num),
    ("time_to_recover_s", Kind::Num),
];

const VOCAB: Vocabulary = Vocabulary {
    noun: "figure",
    context: "",
    names: NAMES,
};

/// recovered = false, metastable = false, peak 12, time to recover: never.
fn values(i: usize) -> Value {
    [
        Value::Bool(false),
        Value::Bool(false),
        Value::Num(12.0),
        Value::Num(f64::INFINITY),
    ][i]
}

fn parse(s: &str) -> Result<Predicate, PredicateError> {
    Predicate::parse(s, &VOCAB)
}

#[test]
fn parses_and_evaluates() {
    let t = |s: &str| parse(s).unwrap().holds(&values);
    assert!(t("peak_crashloop_pods > 0"));
    assert!(!t("peak_crashloop_pods <= 0"));
    assert!(
        t("time_to_recover_s > 3600"),
        "never is later than any bound"
    );
    assert!(t("time_to_recover_s > 1h"));
    assert!(t("time_to_recover_s > \"1h30m\""));
    assert!(t("recovered == false and peak_crashloop_pods >= 12"));
    assert!(t("not recovered"));
    assert!(t("NOT recovered AND peak_crashloop_pods!=3"));
    assert!(t("(recovered or metastable) or peak_crashloop_pods != 3"));
    assert!(!t("recovered or metastable"));
    assert!(t("peak_crashloop_pods>-1"));
    assert_eq!(
        parse("peak_crashloop_pods > 0 or metastable")
            .unwrap()
            .names(),
        [2, 1]
    );
}

#[track_caller]
fn err(s: &str) -> PredicateError {
    parse(s).expect_err(s)
}

#[test]
fn rejects_bad_predicates_with_reasons_and_columns() {
    for (bad, why, column) in [
        ("", "empty predicate", 1),
        (
            "peak_crashloop > 0",
            "did you mean \"peak_crashloop_pods\"",
            1,
        ),
        (
            "peak_crashloop_pods >",
            "expected a value after peak_crashloop_pods >",
            22,
        ),
        ("peak_crashloop_pods > lots", "\"lots\" is not a number", 23),
        ("(recovered", "missing ')'", 11),
        (
            "(recovered metastable)",
            "missing ')' before \"metastable\"",
            12,
        ),
        (
            "recovered recovered",
            "unexpected \"recovered\" after a complete predicate",
            11,
        ),
        ("peak_crashloop_pods", "is a number: compare it", 1),
        ("recovered > 1", "true or false", 1),
        ("peak_crashloop_pods == true", "is a number", 1),
        ("recovered = true", "write == to compare", 11),
        ("!recovered", "write != or not", 1),
        ("> 3", "unexpected \">\"", 1),
        ("recovered and", "unexpected end of predicate", 14),
        ("recovered == \"true", "unterminated quote", 14),
        ("peak_crashloop_pods > nan", "not a number", 23),
    ] {
        let e = err(bad);
        assert!(e.message.contains(why), "{bad:?}: {e}");
        assert_eq!(e.column, column, "{bad:?}: {e}");
    }
    assert_eq!(err("recovred").kind, ErrorKind::UnknownName);
    assert_eq!(err("recovered > 1").kind, ErrorKind::Type);
    assert_eq!(err("recovered >").kind, ErrorKind::Syntax);
    assert_eq!(
        err("recovered recovered").to_string(),
        "unexpected \"recovered\" after a complete predicate (column 11)"
    );
}

#[test]
fn non_ascii_is_an_error_with_its_column_not_a_panic() {
    for (text, column) in [
        ("recovered == trueÅ", 18),
        ("Årecovered", 1),
        ("recovered\u{a0}== true", 10),
        ("not \u{a0}recovered", 5),
        ("peak_crashloop_pods > 1é", 24),
        ("\"Å\" == 1", 1),
    ] {
        let e = err(text);
        assert_eq!(e.column, column, "{text:?}: {e}");
        assert_eq!(e.kind, ErrorKind::Syntax, "{text:?}: {e}");
    }
    assert!(err("recovered\u{a0}== true").message.contains("'\\u{a0}'"));
}

#[test]
fn nesting_is_limited() {
    let ok = format!(
        "{}recovered{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(parse(&ok).is_ok());
    let nots = format!("{}recovered", "not ".repeat(MAX_DEPTH));
    assert!(parse(&nots).is_ok());
    let deep = format!(
        "{}recovered{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let e = err(&deep);
    assert!(e.message.contains("nested deeper than 64"), "{e}");
    assert_eq!(e.column, MAX_DEPTH + 1);
    let e = err(&"not ".repeat(30_000));
    assert_eq!(e.column, 4 * MAX_DEPTH + 1);
    assert!(err(&"(".repeat(20_000)).message.contains("nested deeper"));
}

#[test]
fn assertions() {
    let a = parse_assertion(
        "cluster.web: peak_crashloop_pods == 0 over 5 seeds",
        &VOCAB,
        100,
    )
    .unwrap();
    assert_eq!(a.scope, ScopeSyntax::Cluster("web".into()));
    assert_eq!(a.over, Some(5));
    assert!(matches!(
        a.body,
        Body::Every(Predicate::Compare { index: 2, .. })
    ));
    let a = parse_assertion(" P ( (recovered or metastable) ) >= 0.5", &VOCAB, 100).unwrap();
    assert_eq!(a.scope, ScopeSyntax::Fleet);
    assert!(matches!(a.body, Body::Probability { op: CompareOp::Ge, bound, .. } if bound == 0.5));
    let a = parse_assertion(
        "fleet: p(time_to_recover_s > 1h) <= 0.05 over 50 Seeds",
        &VOCAB,
        100,
    )
    .unwrap();
    assert_eq!(a.over, Some(50));
    let a = parse_assertion("cluster.*: not metastable", &VOCAB, 100).unwrap();
    assert_eq!(a.scope, ScopeSyntax::Cluster("*".into()));
    for (bad, why) in [
        ("  ", "empty assertion"),
        ("recovered over 0 seeds", "N must be 1..=100, got \"0\""),
        (
            "recovered over lots seeds",
            "N must be 1..=100, got \"lots\"",
        ),
        ("recovered over 3", "expected \"over N seeds\" at the end"),
        (
            "recovered over 3 seeds more",
            "expected \"over N seeds\" at the end",
        ),
        ("over 3 seeds", "nothing to check before \"over\""),
        ("p(recovered", "p( has no matching ')'"),
        ("p(recovered <= 0.1", "p( has no matching ')'"),
        (
            "p(recovered)",
            "expected a comparison after p(...), e.g. \"p(recovered) <= 0.05\"",
        ),
        ("p(recovered) <=", "expected a comparison after p(...)"),
        (
            "p(recovered) < x",
            "a probability must be a number in [0, 1], got \"x\"",
        ),
        ("p(metastable) <= 5", "got \"5\""),
        ("p(peak_crashloop_pods) < 0.1", "is a number"),
        (
            "clusters.web: recovered",
            "scope \"clusters.web\" is neither",
        ),
        ("cluster.: recovered", "cluster scope without a name"),
        ("cluster.web: ", "empty predicate"),
        (
            "recovered == true yes",
            "unexpected \"yes\" after a complete predicate",
        ),
    ] {
        let e = parse_assertion(bad, &VOCAB, 100).expect_err(bad);
        assert!(e.message.contains(why), "{bad:?}: {e}");
    }
}
