//! Queueing-theory formulas the simulated CA is validated against.
//!
//! All three models have Poisson arrivals (rate `lambda`), `c` servers with exponential
//! service (rate `mu` each) and FIFO order:
//! - [`erlang_c`]: M/M/c, infinite patience;
//! - [`erlang_a`]: M/M/c+M, exponential patience with rate `theta` (mean `1/theta`);
//! - [`mmc_d`]: M/M/c+D, fixed patience `d` (Boots & Tijms 1999).
//!
//! Patience applies to the queue wait: a customer not in service when it runs out leaves.
//!
//! Everything is computed in log space from the stable Erlang-B recurrence
//! `1/B(k) = 1 + (k/a) / B(k-1)`, so `c` in the thousands and heavy overload neither
//! overflow nor cancel catastrophically.
//!
//! # Derivations (written out so they can be checked)
//! **Erlang A.** The number in system is a birth-death process with birth rate `lambda`
//! and death rate `min(n, c) mu + (n - c)^+ theta` (Garnett, Mandelbaum & Reiman 2002).
//! With `t_j = prod_{i=1..j} lambda / (c mu + i theta)`, `pi_{c+j} = pi_c t_j` and
//! `sum_{n<=c} pi_n = pi_c / B(c, a)`. An arrival finding `j` customers waiting ahead
//! (PASTA) is served with probability `g_j = c mu / (c mu + (j+1) theta)` (a telescoping
//! product) and, given that, waits on average `H_j = sum_{k=0..j} 1 / (c mu + (k+1) theta)`
//! (competing exponential clocks at each position). Hence
//! `P(wait) = P(N >= c)`, `P(served) = P(N < c) + sum_j pi_{c+j} g_j`,
//! `E[W | served] = sum_j pi_{c+j} g_j H_j / P(served)`. The unit tests check
//! `P(abandon) = theta E[Q] / lambda` and the offered-wait integral of Mandelbaum &
//! Zeltyn (M/M/n+G) against these sums.
//!
//! **M/M/c+D.** Let `V` be the offered wait (what an infinitely patient arrival would
//! wait). With `n < c` busy servers the state is discrete; when all are busy `V` has density
//! `f(v) = lambda p_{c-1} exp(lambda min(v, d) - c mu v)`, `v > 0` (level crossing: an arrival
//! seeing `V < d` joins and adds an `Exp(c mu)` amount; one seeing `V >= d` will abandon
//! and adds nothing). With `delta = lambda - c mu`,
//! `J = (e^{delta d} - 1) / delta + e^{delta d} / (c mu)` and
//! `eps = sum_{n<c} pi_n / pi_{c-1} = 1 / B(c-1, a)`: `p_{c-1} = 1 / (eps + lambda J)`,
//! `P(wait) = lambda J p_{c-1}`, `P(abandon) = P(V >= d) = lambda e^{delta d} p_{c-1} / (c mu)`,
//! `E[W; served] = lambda p_{c-1} int_0^d v e^{delta v} dv`. This is Boots & Tijms (1999)'s
//! result, and the M/M/n+G formula of Mandelbaum & Zeltyn with `H(x) = min(x, d)`.
//! `d -> infinity` gives Erlang C and `d = 0` Erlang B (both unit-tested).

/// Steady-state figures of a queue, per customer unless said otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueMetrics {
    /// Probability that an arrival has to wait (finds all servers busy).
    pub p_wait: f64,
    /// Probability that an arrival abandons (runs out of patience before service).
    pub p_abandon: f64,
    /// Mean queue wait of the customers who are served, in seconds.
    pub mean_wait_s: f64,
    /// Time-average number of customers waiting.
    pub mean_queue_len: f64,
    /// Fraction of server capacity in use.
    pub utilization: f64,
}

/// `ln(e^a + e^b)` without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// `ln(1 / B(c, a))` for the Erlang B (loss) formula with `c` servers and offered load
/// `a = lambda / mu`, by the recurrence `I_k = 1 + (k / a) I_{k-1}`, `I_0 = 1`, in logs.
pub fn ln_inv_erlang_b(c: u32, a: f64) -> f64 {
    let ln_a = a.ln();
    let mut ln_i = 0.0f64;
    for k in 1..=c {
        ln_i = log_add(0.0, (k as f64).ln() - ln_a + ln_i);
    }
    ln_i
}

/// Erlang B: the blocking probability of M/M/c/c with offered load `a`.
pub fn erlang_b(c: u32, a: f64) -> f64 {
    (-ln_inv_erlang_b(c, a)).exp()
}

fn valid(lambda: f64, mu: f64, c: u32) -> bool {
    lambda.is_finite() && lambda > 0.0 && mu.is_finite() && mu > 0.0 && c >= 1
}

/// M/M/c (Erlang C). `None` unless `lambda < c mu` (the queue is stable).
pub fn erlang_c(lambda: f64, mu: f64, c: u32) -> Option<QueueMetrics> {
    if !valid(lambda, mu, c) {
        return None;
    }
    let a = lambda / mu;
    let rho = a / c as f64;
    if rho >= 1.0 {
        return None;
    }
    let b = erlang_b(c, a);
    let p_wait = b / (1.0 - rho * (1.0 - b));
    let mean_wait_s = p_wait / (c as f64 * mu - lambda);
    Some(QueueMetrics {
        p_wait,
        p_abandon: 0.0,
        mean_wait_s,
        mean_queue_len: lambda * mean_wait_s,
        utilization: rho,
    })
}

/// Largest number of series terms [`erlang_a`] sums before giving up.
const MAX_TERMS: u64 = 100_000_000;

/// M/M/c+M (Erlang A) with abandonment rate `theta` (mean patience `1 / theta`). Stable
/// for any load. `None` for invalid parameters or when the series would need more than
/// 10^8 terms (extreme overload with nearly infinite patience).
pub fn erlang_a(lambda: f64, mu: f64, c: u32, theta: f64) -> Option<QueueMetrics> {
    if !(valid(lambda, mu, c) && theta.is_finite() && theta > 0.0) {
        return None;
    }
    let cmu = c as f64 * mu;
    let ln_lambda = lambda.ln();
    let ln_i = ln_inv_erlang_b(c, lambda / mu);
    // ln t_j is unimodal: it grows while lambda > c mu + j theta.
    let mut peak_lt = f64::NEG_INFINITY;
    let mut lt = 0.0;
    let mut j: u64 = 1;
    loop {
        lt += ln_lambda - (cmu + j as f64 * theta).ln();
        peak_lt = peak_lt.max(lt);
        if lambda <= cmu + (j + 1) as f64 * theta {
            break;
        }
        j += 1;
        if j > MAX_TERMS {
            return None;
        }
    }
    let peak_j = j;
    let m = ln_i.max(peak_lt).max(0.0);
    // j = 0 (the arrival finds all servers busy and nobody waiting).
    let e0 = (-m).exp();
    let mut h = 1.0 / (cmu + theta);
    let g0 = cmu / (cmu + theta);
    let (mut s0, mut s1, mut sg, mut sh) = (0.0, 0.0, e0 * g0, e0 * g0 * h);
    let mut lt = 0.0;
    let mut j: u64 = 1;
    loop {
        let rate = cmu + j as f64 * theta;
        lt += ln_lambda - rate.ln();
        h += 1.0 / (rate + theta);
        let e = (lt - m).exp();
        let g = cmu / (rate + theta);
        s0 += e;
        s1 += j as f64 * e;
        sg += g * e;
        sh += g * h * e;
        if j > peak_j && lt - m < -60.0 {
            break;
        }
        j += 1;
        if j > MAX_TERMS {
            return None;
        }
    }
    let low = (ln_i - m).exp(); // sum_{n<=c} pi_n / pi_c, scaled by e^-m
    let low_below_c = low * (-(-ln_i).exp_m1()); // sum_{n<c}
    let z = low + s0;
    let p_wait = (e0 + s0) / z;
    let p_served = (low_below_c + sg) / z;
    let mean_queue_len = s1 / z;
    let p_abandon = 1.0 - p_served;
    Some(QueueMetrics {
        p_wait,
        p_abandon,
        mean_wait_s: if p_served > 0.0 {
            sh / z / p_served
        } else {
            0.0
        },
        mean_queue_len,
        utilization: lambda * p_served / cmu,
    })
}

/// `ln((e^x - 1) / x)`, stable for all x.
fn ln_psi(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else if x > 30.0 {
        x + (-(-x).exp()).ln_1p() - x.ln()
    } else {
        (x.exp_m1() / x).ln()
    }
}

/// `ln(int_0^1 u e^{x u} du) = ln((e^x (x - 1) + 1) / x^2)`, stable for all x.
fn ln_phi(x: f64) -> f64 {
    if x.abs() < 1e-2 {
        (0.5 + x / 3.0 + x * x / 8.0 + x * x * x / 30.0 + x * x * x * x / 144.0).ln()
    } else if x > 30.0 {
        x + (x - 1.0 + (-x).exp()).ln() - 2.0 * x.ln()
    } else {
        ((x.exp() * (x - 1.0) + 1.0) / (x * x)).ln()
    }
}

/// M/M/c+D: fixed patience `d` seconds (Boots & Tijms 1999). Stable for any load.
pub fn mmc_d(lambda: f64, mu: f64, c: u32, d: f64) -> Option<QueueMetrics> {
    if !(valid(lambda, mu, c) && d.is_finite() && d >= 0.0) {
        return None;
    }
    let cmu = c as f64 * mu;
    let x = (lambda - cmu) * d;
    let ln_lambda = lambda.ln();
    let ln_eps = ln_inv_erlang_b(c - 1, lambda / mu);
    let ln_d = d.ln(); // -inf for d = 0: those terms vanish
    let ln_a1 = if d > 0.0 {
        ln_lambda + ln_d + ln_psi(x)
    } else {
        f64::NEG_INFINITY
    };
    let ln_a2 = ln_lambda + x - cmu.ln();
    let ln_wait = log_add(ln_a1, ln_a2);
    let ln_z = log_add(ln_eps, ln_wait);
    let p_wait = (ln_wait - ln_z).exp();
    let p_abandon = (ln_a2 - ln_z).exp();
    let wait_served = if d > 0.0 {
        (ln_lambda + 2.0 * ln_d + ln_phi(x) - ln_z).exp()
    } else {
        0.0
    };
    let p_served = 1.0 - p_abandon;
    Some(QueueMetrics {
        p_wait,
        p_abandon,
        mean_wait_s: if p_served > 0.0 {
            wait_served / p_served
        } else {
            0.0
        },
        mean_queue_len: lambda * (wait_served + d * p_abandon),
        utilization: lambda * p_served / cmu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    /// Direct textbook sums, only usable for small c.
    fn naive_erlang_c(lambda: f64, mu: f64, c: u32) -> (f64, f64) {
        let a = lambda / mu;
        let rho = a / c as f64;
        let mut fact = 1.0;
        let mut sum = 0.0;
        for k in 0..c {
            if k > 0 {
                fact *= k as f64;
            }
            sum += a.powi(k as i32) / fact;
        }
        let top = a.powi(c as i32) / (fact * c as f64) / (1.0 - rho);
        let pw = top / (sum + top);
        (pw, pw / (c as f64 * mu - lambda))
    }

    #[test]
    fn erlang_b_table_values() {
        assert!(close(erlang_b(1, 1.0), 0.5, 1e-12));
        assert!(close(erlang_b(2, 1.0), 0.2, 1e-12));
        // Published Erlang B table: 10 servers, 5 erlangs -> 0.018385.
        assert!(close(erlang_b(10, 5.0), 0.018_384_6, 1e-4));
        // Large c: no overflow, and the known behaviour B(1000, 1000) ~ 0.0248.
        let b = erlang_b(1000, 1000.0);
        assert!(b > 0.024 && b < 0.026, "{b}");
    }

    #[test]
    fn erlang_c_known_values() {
        // M/M/1: P(wait) = rho, Wq = rho / (mu - lambda).
        let m = erlang_c(0.8, 1.0, 1).unwrap();
        assert!(close(m.p_wait, 0.8, 1e-12));
        assert!(close(m.mean_wait_s, 4.0, 1e-12));
        assert!(close(m.mean_queue_len, 3.2, 1e-12));
        // Hand-computed: c = 2, a = 1 -> C = 1/3, Wq = (1/3) / (2 - 1).
        let m = erlang_c(1.0, 1.0, 2).unwrap();
        assert!(close(m.p_wait, 1.0 / 3.0, 1e-12));
        assert!(close(m.mean_wait_s, 1.0 / 3.0, 1e-12));
        // Call-centre example: 10 agents, 8 erlangs -> P(wait) = 0.4092.
        let m = erlang_c(8.0, 1.0, 10).unwrap();
        assert!((m.p_wait - 0.4092).abs() < 5e-5, "{}", m.p_wait);
        for &(lambda, c) in &[(3.0, 4u32), (3.8, 4), (12.0, 16), (15.2, 16), (0.5, 1)] {
            let (pw, w) = naive_erlang_c(lambda, 1.0, c);
            let m = erlang_c(lambda, 1.0, c).unwrap();
            assert!(close(m.p_wait, pw, 1e-10), "c={c} {} vs {pw}", m.p_wait);
            assert!(close(m.mean_wait_s, w, 1e-10));
        }
        assert!(erlang_c(4.0, 1.0, 4).is_none(), "rho = 1 is unstable");
        // c = 1000 at rho = 0.99 stays finite and sensible.
        let m = erlang_c(990.0, 1.0, 1000).unwrap();
        assert!(m.p_wait > 0.5 && m.p_wait < 1.0 && m.mean_wait_s.is_finite());
    }

    #[test]
    fn erlang_a_with_theta_equal_mu_is_poisson() {
        // When theta = mu every customer leaves at rate mu whether served or waiting:
        // N ~ Poisson(a), so P(wait) = P(N >= c), E[Q] = E[(N - c)^+].
        let (lambda, mu, c) = (7.0f64, 1.0f64, 6u32);
        let a = lambda / mu;
        let mut p = (-a).exp();
        let (mut below, mut eq) = (0.0, 0.0);
        for n in 0..200u32 {
            if n < c {
                below += p;
            } else {
                eq += (n - c) as f64 * p;
            }
            p *= a / (n + 1) as f64;
        }
        let m = erlang_a(lambda, mu, c, mu).unwrap();
        assert!(
            close(m.p_wait, 1.0 - below, 1e-10),
            "{} {}",
            m.p_wait,
            1.0 - below
        );
        assert!(close(m.mean_queue_len, eq, 1e-10));
        assert!(close(m.p_abandon, mu * eq / lambda, 1e-10));
    }

    /// Simpson's rule on [lo, hi] with n (even) intervals.
    fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
        let dx = (hi - lo) / n as f64;
        let mut s = f(lo) + f(hi);
        for i in 1..n {
            s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(lo + i as f64 * dx);
        }
        s * dx / 3.0
    }

    /// Mandelbaum & Zeltyn's M/M/n+G offered-wait density, integrated numerically on
    /// [0, kink] and [kink, upper]: returns (P(wait), P(abandon), E[W | served]).
    fn offered_wait_integral(
        lambda: f64,
        mu: f64,
        c: u32,
        h: impl Fn(f64) -> f64,
        survival: impl Fn(f64) -> f64,
        kink: f64,
        upper: f64,
    ) -> (f64, f64, f64) {
        let eps = (ln_inv_erlang_b(c - 1, lambda / mu)).exp();
        let f = |x: f64| (lambda * h(x) - c as f64 * mu * x).exp();
        // Stop a hair short of the kink on each side so a step there is not sampled.
        let (left, right) = (kink * (1.0 - 1e-12), kink * (1.0 + 1e-12));
        let int = |g: &dyn Fn(f64) -> f64| {
            simpson(g, 0.0, left, 100_000) + simpson(g, right, upper, 100_000)
        };
        let j = int(&|x| f(x));
        let served = int(&|x| f(x) * survival(x));
        let wserved = int(&|x| f(x) * survival(x) * x);
        let p = lambda / (eps + lambda * j);
        let p_wait = p * j;
        let p_ab = p_wait - p * served;
        (p_wait, p_ab, p * wserved / (1.0 - p_ab))
    }

    #[test]
    fn erlang_a_matches_offered_wait_integral_and_little() {
        for &(lambda, c, theta) in &[(3.0, 4u32, 0.5), (5.0, 4, 2.0), (14.0, 16, 0.2)] {
            let m = erlang_a(lambda, 1.0, c, theta).unwrap();
            let (pw, pab, w) = offered_wait_integral(
                lambda,
                1.0,
                c,
                |x| (1.0 - (-theta * x).exp()) / theta,
                |x| (-theta * x).exp(),
                1.0,
                60.0,
            );
            assert!(close(m.p_wait, pw, 1e-6), "{} {pw}", m.p_wait);
            assert!(close(m.p_abandon, pab, 1e-6), "{} {pab}", m.p_abandon);
            assert!(close(m.mean_wait_s, w, 1e-6), "{} {w}", m.mean_wait_s);
            // Exponential patience: P(abandon) = theta E[Q] / lambda.
            assert!(close(m.p_abandon, theta * m.mean_queue_len / lambda, 1e-9));
        }
    }

    #[test]
    fn erlang_a_limits() {
        // Nearly infinite patience gives Erlang C back.
        let a = erlang_a(3.0, 1.0, 4, 1e-9).unwrap();
        let c = erlang_c(3.0, 1.0, 4).unwrap();
        assert!(close(a.p_wait, c.p_wait, 1e-6));
        assert!(close(a.mean_wait_s, c.mean_wait_s, 1e-6));
        // Heavy overload at large c: finite, abandonment absorbs the excess.
        let m = erlang_a(2000.0, 1.0, 1000, 0.1).unwrap();
        assert!(m.p_abandon > 0.45 && m.p_abandon < 0.55, "{}", m.p_abandon);
        assert!(m.p_wait > 0.999 && m.utilization <= 1.0 + 1e-9);
    }

    #[test]
    fn mmc_d_matches_offered_wait_integral() {
        for &(lambda, c, d) in &[
            (3.0, 4u32, 0.5),
            (5.0, 4, 1.0),
            (15.0, 16, 0.3),
            (1.2, 1, 2.0),
        ] {
            let m = mmc_d(lambda, 1.0, c, d).unwrap();
            let (pw, pab, w) = offered_wait_integral(
                lambda,
                1.0,
                c,
                |x| x.min(d),
                |x| if x < d { 1.0 } else { 0.0 },
                d,
                d + 40.0,
            );
            assert!(close(m.p_wait, pw, 1e-7), "{} {pw}", m.p_wait);
            assert!(close(m.p_abandon, pab, 1e-6), "{} {pab}", m.p_abandon);
            assert!(close(m.mean_wait_s, w, 1e-6), "{} {w}", m.mean_wait_s);
        }
    }

    #[test]
    fn mmc_d_limits() {
        // d -> infinity: Erlang C.
        let d = mmc_d(3.0, 1.0, 4, 1e4).unwrap();
        let c = erlang_c(3.0, 1.0, 4).unwrap();
        assert!(close(d.p_wait, c.p_wait, 1e-9) && close(d.mean_wait_s, c.mean_wait_s, 1e-9));
        assert!(d.p_abandon < 1e-12);
        // d = 0: Erlang B loss system.
        let z = mmc_d(5.0, 1.0, 10, 0.0).unwrap();
        assert!(close(z.p_abandon, erlang_b(10, 5.0), 1e-12));
        assert!(close(z.p_wait, z.p_abandon, 1e-12) && z.mean_wait_s == 0.0);
        // M/M/1+D by hand: lambda = mu = 1, d = 1 -> delta = 0, J = d + 1,
        // p0 = 1 / (1 + 2) => P(wait) = 2/3, P(ab) = 1/3, E[W; served] = 1/2 * 1/3.
        let m = mmc_d(1.0, 1.0, 1, 1.0).unwrap();
        assert!(close(m.p_wait, 2.0 / 3.0, 1e-12));
        assert!(close(m.p_abandon, 1.0 / 3.0, 1e-12));
        assert!(close(m.mean_wait_s, (1.0 / 6.0) / (2.0 / 3.0), 1e-9));
        // Overload at c = 1000 stays finite.
        let m = mmc_d(3000.0, 1.0, 1000, 10.0).unwrap();
        assert!(close(m.p_abandon, 2.0 / 3.0, 1e-6), "{}", m.p_abandon);
        assert!(m.mean_wait_s.is_finite() && m.mean_wait_s < 10.0);
    }
}
