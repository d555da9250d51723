//! The core of the fuzz target `fuzz/fuzz_targets/predicate.rs`, here so that the normal
//! test suite runs it too (the proptests below): the predicate language (`when`,
//! `[sweep] failure`), the assertion language of `[expect]` and `--set PATH=VALUE`
//! parsing, on arbitrary text: any Unicode (no-break spaces, combining marks, letters
//! outside ASCII), deep nesting of parentheses and `not`, and absurdly long inputs.
//!
//! Input: the first byte picks what the rest is read as; the rest is taken as UTF-8
//! (lossily, so every input reaches the parsers as text). Besides "never panics, never
//! overflows the stack", it checks that an error's column lies inside the text (plus one
//! for "at the end"), and that a predicate that parses evaluates without panicking and
//! its negation evaluates to the opposite.

use crate::metrics::FIGURES;
use crate::predicate::{parse_assertion, Kind, Predicate, Value};
use crate::scenario::Override;

/// Runs one fuzz input through the parsers; panics on a broken promise.
pub fn one(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // Deep nesting is the interesting case and rarely found by mutation: bits 2-3 of the
    // mode wrap the text in thousands of parentheses or `not`s (bits 0-1 pick the parser).
    let text = match (mode >> 2) % 4 {
        1 => format!("{}{text}{}", "(".repeat(5000), ")".repeat(5000)),
        2 => format!("{}{text}", "not ".repeat(20_000)),
        3 => format!("p({}{text})", "(".repeat(3000)),
        _ => text.into_owned(),
    };
    let chars = text.chars().count();
    match mode % 4 {
        0 | 3 => match Predicate::parse(&text, &FIGURES) {
            Ok(p) => {
                let values = |i: usize| match FIGURES.names[i].1 {
                    Kind::Num => Value::Num(i as f64),
                    Kind::Bool => Value::Bool(i % 2 == 0),
                };
                let holds = p.holds(&values);
                let negated = Predicate::Not(Box::new(p));
                assert_eq!(negated.holds(&values), !holds);
            }
            Err(e) => assert!(
                e.column >= 1 && e.column <= chars + 1,
                "column {} outside a text of {chars} characters",
                e.column
            ),
        },
        1 => {
            if let Err(e) = parse_assertion(&text, &FIGURES, 1_000_000) {
                assert!(
                    e.column >= 1 && e.column <= chars + 1,
                    "column {} outside a text of {chars} characters",
                    e.column
                );
            }
        }
        _ => {
            // Overrides also reach every message that echoes them: rendering one must
            // not panic on any text either.
            if let Err(e) = Override::parse(&text) {
                let _ = e.to_string();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The fuzz target's harness on arbitrary bytes (every mode: predicates, assertions,
        /// `--set`, deep nesting).
        #[test]
        fn fuzz_harness_holds_on_random_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            super::one(&bytes);
        }

        /// ... and on arbitrary Unicode text with the language's words and operators mixed in.
        #[test]
        fn fuzz_harness_holds_on_random_unicode(
            mode in proptest::prelude::any::<u8>(),
            text in "(\\PC|recovered|not |and|or|\\(|\\)|<=|>=|==|p\\(| over | seeds|cluster\\.|: |\u{a0}|Å|[0-9.e+-]){0,40}",
        ) {
            let mut data = vec![mode];
            data.extend_from_slice(text.as_bytes());
            super::one(&data);
        }
    }
}
