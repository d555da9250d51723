//! Summary statistics for sweeps: a proportion with its Wilson score interval,
//! quantiles and the mean. Pure functions, deterministic for a given input order.
//!
//! Missing values: NaN entries are ignored by [`quantile`], [`quantiles`] and [`mean`];
//! infinities are kept (a run that never recovers may report an infinite time).

/// z for a two-sided 95 % interval: the 0.975 quantile of the standard normal.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A proportion `successes / trials` with a 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    /// Point estimate `successes / trials`.
    pub p: f64,
    /// Lower end of the interval, in `[0, p]`.
    pub lo: f64,
    /// Upper end of the interval, in `[p, 1]`.
    pub hi: f64,
}

/// The Wilson score interval (95 %) for `successes` out of `trials`: the interval of
/// proportions whose score test does not reject the observation. Unlike the normal
/// approximation it stays inside [0, 1] and is sensible at 0 or `trials` successes,
/// which is where failure curves usually are:
///
/// `(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)` with z = [`Z_95`].
///
/// `None` when `trials` is 0 or `successes > trials`.
pub fn wilson_interval(successes: u64, trials: u64) -> Option<Proportion> {
    if trials == 0 || successes > trials {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    let lo = if successes == 0 {
        0.0
    } else {
        (center - half).clamp(0.0, p)
    };
    let hi = if successes == trials {
        1.0
    } else {
        (center + half).clamp(p, 1.0)
    };
    Some(Proportion { p, lo, hi })
}

/// The `q` quantile of `values` (`q` in [0, 1]) by linear interpolation between order
/// statistics: Hyndman & Fan type 7, the default of R's `quantile` and NumPy's
/// `percentile`. With the sorted values x₁ ≤ … ≤ xₙ and h = (n − 1)·q, the result is
/// x⌊h⌋₊₁ + (h − ⌊h⌋)(x⌊h⌋₊₂ − x⌊h⌋₊₁). So p50 of [1, 2, 3, 4] is 2.5.
///
/// `None` when there is no non-NaN value or `q` is outside [0, 1].
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    quantiles(values, &[q]).map(|v| v[0])
}

/// Several quantiles of `values` (see [`quantile`]), sorting once. `None` when there is
/// no non-NaN value or any `q` is outside [0, 1].
pub fn quantiles(values: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
    if qs.iter().any(|q| !(0.0..=1.0).contains(q)) {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some(qs.iter().map(|&q| quantile_sorted(&sorted, q)).collect())
}

fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let i = h.floor() as usize;
    let frac = h - i as f64;
    let a = sorted[i];
    match sorted.get(i + 1) {
        Some(&b) if frac > 0.0 && a != b => a + frac * (b - a),
        _ => a,
    }
}

/// The arithmetic mean of the non-NaN `values`, summed in order; `None` if there is none.
pub fn mean(values: &[f64]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_published_values() {
        // 5/10: 0.2366 .. 0.7634; 0/10: 0 .. 0.2775; 10/10: 0.7225 .. 1;
        // 1/20: 0.0089 .. 0.2361 (Newcombe 1998, Table I style values).
        let w = wilson_interval(5, 10).unwrap();
        assert!(
            close(w.p, 0.5) && close(w.lo, 0.2366) && close(w.hi, 0.7634),
            "{w:?}"
        );
        let w = wilson_interval(0, 10).unwrap();
        assert!(w.lo == 0.0 && close(w.hi, 0.2775), "{w:?}");
        let w = wilson_interval(10, 10).unwrap();
        assert!(close(w.lo, 0.7225) && w.hi == 1.0, "{w:?}");
        let w = wilson_interval(1, 20).unwrap();
        assert!(close(w.lo, 0.0089) && close(w.hi, 0.2361), "{w:?}");
        let w = wilson_interval(81, 263).unwrap();
        assert!(close(w.lo, 0.2553) && close(w.hi, 0.3662), "{w:?}");
    }

    #[test]
    fn wilson_rejects_impossible_counts() {
        assert_eq!(wilson_interval(0, 0), None);
        assert_eq!(wilson_interval(3, 2), None);
    }

    #[test]
    fn wilson_is_ordered_and_bounded() {
        for n in 1..60u64 {
            for k in 0..=n {
                let w = wilson_interval(k, n).unwrap();
                assert!(0.0 <= w.lo && w.lo <= w.p && w.p <= w.hi && w.hi <= 1.0);
            }
        }
    }

    #[test]
    fn quantiles_are_type_7() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        let one_to_ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let q = quantiles(&one_to_ten, &[0.0, 0.5, 0.95, 1.0]).unwrap();
        assert!(close(q[0], 1.0) && close(q[1], 5.5) && close(q[2], 9.55) && close(q[3], 10.0));
        // Order of input does not matter; NaN is ignored.
        assert_eq!(quantile(&[4.0, f64::NAN, 1.0, 3.0, 2.0], 0.25), Some(1.75));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
    }

    #[test]
    fn quantiles_handle_infinity_and_bad_input() {
        assert_eq!(quantile(&[1.0, f64::INFINITY], 1.0), Some(f64::INFINITY));
        assert_eq!(quantile(&[1.0, f64::INFINITY], 0.5), Some(f64::INFINITY));
        assert_eq!(
            quantile(&[f64::INFINITY, f64::INFINITY], 0.5),
            Some(f64::INFINITY)
        );
        assert_eq!(quantile(&[1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[f64::NAN], 0.5), None);
        assert_eq!(quantile(&[1.0], 1.5), None);
        assert_eq!(quantile(&[1.0], f64::NAN), None);
    }

    #[test]
    fn mean_ignores_nan() {
        assert_eq!(mean(&[1.0, 2.0, 3.0, 6.0]), Some(3.0));
        assert_eq!(mean(&[f64::NAN, 2.0]), Some(2.0));
        assert_eq!(mean(&[]), None);
    }
}
