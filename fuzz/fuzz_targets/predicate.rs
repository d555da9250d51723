//! Fuzz target: the predicate language (`when`, `[sweep] failure`), the assertion
//! language of `[expect]` and `--set PATH=VALUE` parsing, on arbitrary text (any
//! Unicode, deep nesting, long inputs). The harness is
//! [`fleetsim::fuzzing::one`], which the normal test suite also runs as a
//! proptest. Run: `cargo +nightly fuzz run predicate -- -max_total_time=600`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fleetsim::fuzzing::one(data);
});
