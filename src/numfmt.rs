//! Numbers written for people and read back by programs: a value rounded to some
//! significant digits, and a duration as one decimal number with a unit, both in forms
//! that TOML, `--set` and [`parse_duration`](crate::duration::parse_duration) read back
//! to the same value.
//! Also the calendar arithmetic of the RFC 3339 times that runs write and read: the
//! date of a Unix day and back.

use crate::engine::SimTime;

/// `x` rounded to `digits` significant digits (1..=17), as the shortest decimal that
/// reads back to the rounded value: `sig(0.026715911, 4) == "0.02672"`,
/// `sig(7.690945e-4, 3) == "0.000769"`, `sig(12341.7, 3) == "12300"`. Very small or
/// very large magnitudes use an exponent (`1.5e-9`); non-finite values print as Rust
/// does (`NaN`, `inf`).
pub fn sig(x: f64, digits: usize) -> String {
    let r = round_sig(x, digits);
    if r == 0.0 || !r.is_finite() {
        return format!("{r}");
    }
    let e = r.abs().log10().floor();
    if (-6.0..15.0).contains(&e) {
        format!("{r}")
    } else {
        format!("{r:e}")
    }
}

/// `x` rounded to `digits` significant digits, as a number.
pub fn round_sig(x: f64, digits: usize) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = digits.clamp(1, 17);
    // Through the exponent notation, which rounds correctly (half to even on the
    // decimal digits) without a power-of-ten multiplication error.
    format!("{x:.*e}", digits - 1).parse().unwrap_or(x)
}

/// A duration as one decimal number in the largest unit (`s`, `ms`, `us`, `ns`) that
/// keeps it at least 1, exact to the nanosecond: `1004371ns -> "1.004371ms"`,
/// `150ms -> "150ms"`, `90s -> "90s"`. Reads back with `parse_duration` to the same
/// nanoseconds.
pub fn duration_decimal(t: SimTime) -> String {
    let ns = t.as_nanos();
    let (per, unit) = match ns {
        0 => return "0s".into(),
        n if n >= 1_000_000_000 => (1_000_000_000u64, "s"),
        n if n >= 1_000_000 => (1_000_000, "ms"),
        n if n >= 1_000 => (1_000, "us"),
        _ => (1, "ns"),
    };
    let (whole, frac) = (ns / per, ns % per);
    if frac == 0 {
        return format!("{whole}{unit}");
    }
    let width = per.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}{unit}", digits.trim_end_matches('0'))
}

/// Unix seconds of an RFC 3339 time (`2026-03-01T02:00:00Z`, `…T02:00:00.5+01:00`);
/// `None` if `s` is not one. Works on bytes and `str::get`, so a multibyte character
/// anywhere is an error, never a panic.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = format!("0.{}", &s[start..i]).parse().ok()?;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::parse_duration;

    #[test]
    fn civil_dates_of_unix_days_and_back() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn significant_digits() {
        assert_eq!(sig(0.026715911, 4), "0.02672");
        assert_eq!(sig(7.690945e-4, 3), "0.000769");
        assert_eq!(sig(12341.7454, 3), "12300");
        assert_eq!(sig(995.6486, 6), "995.649");
        assert_eq!(sig(1.5e-9, 2), "1.5e-9");
        assert_eq!(sig(0.0, 3), "0");
        assert_eq!(sig(-2.5, 1), "-2");
        assert_eq!(sig(f64::NAN, 3), "NaN");
        for x in [0.1, 0.3, 1.0 / 3.0, 123456.789, 7e-7] {
            let s = sig(x, 6);
            assert_eq!(s.parse::<f64>().unwrap(), round_sig(x, 6), "{s}");
        }
    }

    #[test]
    fn decimal_durations_read_back() {
        for (ns, text) in [
            (1_004_371, "1.004371ms"),
            (150_000_000, "150ms"),
            (90_000_000_000, "90s"),
            (1_500_000_000, "1.5s"),
            (999, "999ns"),
            (1_001, "1.001us"),
            (0, "0s"),
        ] {
            assert_eq!(duration_decimal(SimTime(ns)), text);
            assert_eq!(parse_duration(text).unwrap(), SimTime(ns), "{text}");
        }
        for ns in [1u64, 7, 1_234_567, 98_765_432_109, 3_600_000_000_001] {
            let t = SimTime(ns);
            assert_eq!(parse_duration(&duration_decimal(t)).unwrap(), t);
        }
    }
}

/// A size in bytes for people: `4 GiB`, `1.5 GiB`, `640 MiB`, `12 KiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{} {unit}", sig(bytes as f64 / size as f64, 3));
        }
    }
    format!("{bytes} B")
}

/// Reads a size: a number with an optional unit `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`,
/// `T`/`TiB` (powers of 1024; `KB`, `MB`, `GB`, `TB` are read the same way, as memory
/// budgets usually mean), spaces allowed between: `4GiB`, `512 MiB`, `1.5G`, `1000000`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("not a size: \"{}\" (e.g. 4GiB, 512MiB)", t.escape_debug()))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit \"{}\" (use B, KiB, MiB, GiB or TiB)",
                unit.trim().escape_debug()
            ))
        }
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes <= u64::MAX as f64 / 2.0) {
        return Err(format!("size out of range: \"{}\"", t.escape_debug()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(format_bytes(4 << 30), "4 GiB");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 B");
    }
}

/// The proleptic Gregorian date `(year, month, day)` of day `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The days after 1970-01-01 of the proleptic Gregorian date `year-month-day` (Howard
/// Hinnant's `days_from_civil`; `month` 1..=12).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let (yy, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
