//! Fuzz target: scenario loading and validation (with its `[strategies]`, `[sweep]` and
//! `[expect]` sections), `--set` overrides — every input path a scenario file or a
//! command line reaches before a run.
//!
//! Input: the scenario bytes, then optionally NUL-separated `--set PATH=VALUE` arguments
//! (at most 4). Beyond "never panics", it checks two properties of a document that loads:
//! its resolved TOML loads again to the same scenario and hash (the resolved document is
//! what `run` prints the hash of, so replays depend on it), and overrides applied later
//! (`with_overrides`, a sweep point) agree with the cheap path (`scenario_with`).
#![no_main]

use fleetsim::scenario::{load_bytes, load_str, Override};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let file = parts.next().unwrap_or_default();
    let sets: Vec<Override> = parts
        .take(4)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter_map(|s| Override::parse(s).ok())
        .collect();

    // As a command line gives them: overrides at load time.
    // Loading validates `[strategies]`, `[sweep]` and `[expect]` too.
    let Ok(doc) = load_bytes("fuzz.toml", file, &sets) else {
        return;
    };

    // The resolved document is a fixed point.
    let again = load_str("fuzz.toml", &doc.resolved_toml, &[]).unwrap_or_else(|e| {
        panic!(
            "resolved TOML does not load again:\n{e}\n---\n{}",
            doc.resolved_toml
        )
    });
    assert_eq!(
        again.scenario, doc.scenario,
        "resolved TOML loads to another scenario"
    );
    assert_eq!(again.hash, doc.hash, "resolved TOML is not canonical");

    // Overrides applied afterwards: both paths agree.
    if let Ok(plain) = load_bytes("fuzz.toml", file, &[]) {
        match (plain.with_overrides(&sets), plain.scenario_with(&sets)) {
            (Ok(full), Ok(cheap)) => {
                assert_eq!(
                    full.scenario, cheap,
                    "with_overrides and scenario_with disagree"
                );
                assert_eq!(
                    full.scenario, doc.scenario,
                    "late overrides differ from load-time ones"
                );
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "with_overrides ok={} but scenario_with ok={}",
                a.is_ok(),
                b.is_ok()
            ),
        }
    }
});
