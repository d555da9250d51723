//! Human durations: `"10s"`, `"250ms"`, `"5m"`, `"1h30m"`, `"1.5h"`, `"2d"`.

use crate::engine::SimTime;

/// What [`parse_duration`] accepts, as an ECMA-262 regular expression (the JSON Schema
/// of `fleetsim schema`): one or more `<number><unit>` terms or a bare `0`, spaces around.
/// Only the range (`too large`) is left to the parser; a test holds the two together.
pub const DURATION_PATTERN: &str =
    r"^\s*(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|min|m|h|d))+)\s*$";

/// Parses a human duration into simulated time.
///
/// Accepted: one or more `<number><unit>` terms, units `ns us ms s m h d`; a bare `0`.
/// Rejected with a message: empty strings, negative numbers, missing or unknown units,
/// and values beyond ~584 years.
pub fn parse_duration(text: &str) -> Result<SimTime, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (expected e.g. \"10s\", \"250ms\", \"5m\")".into());
    }
    if s == "0" {
        return Ok(SimTime::ZERO);
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number, e.g. \"10s\""
            ));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| {
            format!(
                "invalid duration {text:?}: bad number {:?}",
                &rest[..num_len]
            )
        })?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ns_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ns, us, ms, s, m, h, d)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (ns, us, ms, s, m, h, d)"
                ))
            }
        };
        total_ns += number * ns_per_unit;
    }
    if !total_ns.is_finite() || total_ns >= u64::MAX as f64 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(SimTime(total_ns.round() as u64))
}

/// Formats a duration the way [`parse_duration`] reads it, shortest exact form first.
pub fn format_duration(t: SimTime) -> String {
    let ns = t.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    for (unit, per) in [
        ("d", 86_400_000_000_000u64),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns % per == 0 {
            return format!("{}{unit}", ns / per);
        }
    }
    format!("{ns}ns")
}

/// Seconds as `47m05s`, `1h02m00s`, `35s`; `never` for +infinity, `-` for NaN (no value).
pub fn format_seconds(x: f64) -> String {
    if x.is_nan() {
        return "-".into();
    }
    if !x.is_finite() {
        return "never".into();
    }
    if x < 0.0 {
        return format!("{x:.1}s");
    }
    let s = x.round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("10s").unwrap(), SimTime::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), SimTime::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), SimTime::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), SimTime::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), SimTime::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), SimTime::ZERO);
        assert_eq!(parse_duration(" 2d ").unwrap(), SimTime::from_secs(172_800));
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in ["", "10", "-5s", "5x", "s", "1e3s", "9999999999d", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn format_round_trips() {
        for t in ["10s", "250ms", "5m", "2h", "3d", "1500us", "7ns"] {
            let d = parse_duration(t).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(SimTime::from_secs(90)), "90s");
    }
}
