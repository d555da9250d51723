//! Range primitives: the checker that collects errors, and its checks of one value
//! (integers, numbers, rates, durations, names, counts) against their ranges and the
//! documented limits. A value that fails is reported and replaced by its default, so the
//! checks that combine values still run.

use crate::duration::format_duration;
use crate::engine::SimTime;

use super::super::error::{ErrorKind, ScenarioError};
use super::super::limits::*;
use super::super::load::Locator;
use super::super::raw::{Dur, Int, Num};

/// A value as TOML, shortened for messages.
pub(super) fn short(v: &toml::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// A float for messages: plain for ordinary magnitudes, scientific otherwise.
pub(super) fn fmt_f64(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if x != 0.0 && (x.abs() >= 1e15 || x.abs() < 1e-6) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A bound of a float range.
#[derive(Clone, Copy)]
pub(super) enum Bound {
    /// `>=` / `<=`
    Inclusive(f64),
    /// `>` / `<`
    Exclusive(f64),
    /// No bound.
    Unbounded,
}

/// Whether a duration may be zero.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum DurationRule {
    /// `>= 0`
    NonNegative,
    /// `> 0` (periods, timeouts: a zero would loop or fail at once)
    Positive,
}

pub(super) const LIMIT: &str = " (limit against absurd sizes, see docs/scenario.md#limits)";

/// Collects the errors of one validation.
pub(super) struct Checker<'a> {
    pub(super) loc: &'a Locator<'a>,
    pub(super) errors: Vec<ScenarioError>,
}

impl Checker<'_> {
    pub(super) fn push(&mut self, path: &str, kind: ErrorKind, message: String) {
        self.errors.push(self.loc.error(path, kind, message));
    }

    /// A component's own validation message, `path: message`.
    pub(super) fn push_prefixed(&mut self, e: &str) {
        match e.split_once(": ") {
            Some((path, message)) => self.err(path, message.to_string()),
            None => self.err("", e.to_string()),
        }
    }

    pub(super) fn err(&mut self, path: &str, message: String) {
        self.push(path, ErrorKind::Invalid, message);
    }

    /// Whether an error was already reported at `prefix` or below it: checks that
    /// combine several values skip then, rather than report a consequence of the
    /// default that replaced a bad value.
    pub(super) fn has_errors_under(&self, prefix: &str) -> bool {
        self.errors.iter().any(|e| {
            e.path == prefix
                || e.path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }

    /// An integer in `min..=max` (`limit`: the max is a documented limit).
    pub(super) fn int(
        &mut self,
        path: &str,
        v: Option<Int>,
        default: u64,
        min: u64,
        max: u64,
        limit: bool,
    ) -> u64 {
        let Some(Int(x)) = v else { return default };
        if x < 0 || (x as u64) < min {
            self.err(path, format!("must be >= {min}, got {x}"));
            default
        } else if x as u64 > max {
            let note = if limit { LIMIT } else { "" };
            self.err(path, format!("must be <= {max}{note}, got {x}"));
            default
        } else {
            x as u64
        }
    }

    /// [`Self::int`] for values the model holds as `u32` (`max` must fit).
    pub(super) fn int32(
        &mut self,
        path: &str,
        v: Option<Int>,
        default: u32,
        min: u32,
        max: u64,
        limit: bool,
    ) -> u32 {
        let max = max.min(u64::from(u32::MAX));
        let x = self.int(path, v, u64::from(default), u64::from(min), max, limit);
        u32::try_from(x).unwrap_or(default)
    }

    /// A finite number within the bounds.
    pub(super) fn num(
        &mut self,
        path: &str,
        v: Option<Num>,
        default: f64,
        lo: Bound,
        hi: Bound,
    ) -> f64 {
        let Some(Num(x)) = v else { return default };
        if !x.is_finite() {
            self.err(path, format!("must be a finite number, got {}", fmt_f64(x)));
            return default;
        }
        let low = match lo {
            Bound::Inclusive(b) if x < b => Some(format!(">= {}", fmt_f64(b))),
            Bound::Exclusive(b) if x <= b => Some(format!("> {}", fmt_f64(b))),
            _ => None,
        };
        let high = match hi {
            Bound::Inclusive(b) if x > b => Some(format!("<= {}", fmt_f64(b))),
            Bound::Exclusive(b) if x >= b => Some(format!("< {}", fmt_f64(b))),
            _ => None,
        };
        if let Some(bound) = low.or(high) {
            self.err(path, format!("must be {bound}, got {}", fmt_f64(x)));
            return default;
        }
        x
    }

    /// A rate in per-second units: `> 0` and at most [`MAX_RATE_PER_S`].
    pub(super) fn rate(&mut self, path: &str, v: Option<Num>, default: f64) -> f64 {
        let x = self.num(path, v, default, Bound::Exclusive(0.0), Bound::Unbounded);
        if x > MAX_RATE_PER_S {
            self.err(
                path,
                format!(
                    "must be <= {}{LIMIT}, got {}",
                    fmt_f64(MAX_RATE_PER_S),
                    fmt_f64(x)
                ),
            );
            return default;
        }
        x
    }

    /// A duration, at most [`MAX_DURATION`].
    pub(super) fn dur(
        &mut self,
        path: &str,
        v: &Option<Dur>,
        default: SimTime,
        rule: DurationRule,
    ) -> SimTime {
        let Some(d) = v else { return default };
        if rule == DurationRule::Positive && d.time == SimTime::ZERO {
            self.err(
                path,
                format!("must be > 0, got \"{}\"", d.text.escape_debug()),
            );
            default
        } else if d.time > MAX_DURATION {
            self.err(
                path,
                format!(
                    "must be <= {}{LIMIT}, got \"{}\"",
                    format_duration(MAX_DURATION),
                    d.text.escape_debug()
                ),
            );
            default
        } else {
            d.time
        }
    }

    /// A name of a named table: letters, digits, `-`, `_`; at most [`MAX_NAME_LEN`].
    pub(super) fn name(&mut self, path: &str, name: &str) -> bool {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            self.err(
                path,
                format!(
                    "bad name \"{}\": names are 1 to {MAX_NAME_LEN} letters, digits, '-' or '_'",
                    name.escape_debug()
                ),
            );
        }
        ok
    }

    pub(super) fn count_limit(&mut self, path: &str, what: &str, n: usize, max: u64) -> bool {
        if n as u64 > max {
            self.err(path, format!("{n} {what}; at most {max}{LIMIT}"));
            false
        } else {
            true
        }
    }

    /// `value` (at `path`) must be >= the sibling `other_name`'s value.
    pub(super) fn not_below(
        &mut self,
        path: &str,
        value: SimTime,
        other_name: &str,
        other: SimTime,
    ) {
        if value < other {
            self.err(
                path,
                format!(
                    "must be >= {other_name} ({}), got {}",
                    format_duration(other),
                    format_duration(value)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_formatting() {
        assert_eq!(fmt_f64(0.5), "0.5");
        assert_eq!(fmt_f64(25.0), "25");
        assert_eq!(fmt_f64(1e300), "1e300");
        assert_eq!(fmt_f64(f64::NAN), "nan");
        assert_eq!(fmt_f64(f64::NEG_INFINITY), "-inf");
    }
}
