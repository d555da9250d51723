//! Fitting models to measurements: Gunther's Universal Scalability Law (USL) fitted to a
//! load test by nonlinear least squares.
//!
//! # Layer
//! Pure numerics, a utility beside [`duration`](crate::duration): numbers in, numbers
//! out. It knows nothing of files, scenarios or the CA model, so it imports nothing from
//! the crate. Reading a load test is [`observed::loadtest`](crate::observed::loadtest),
//! drawing the fit is [`report::usl`](crate::report::usl), and turning a fit into a
//! `[ca.NAME]` stanza is the CLI's (`fleetsim ca fit`).
//!
//! # The model
//! `X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))`: throughput `X` at
//! concurrency `N`, `lambda` the throughput of one request alone, `sigma` contention
//! (serialisation), `kappa` coherency (crosstalk). Both coefficients are bounded below by
//! 0 (as in the R `usl` package); `lambda` by 0.
//!
//! # The fit ([`fit_usl`])
//! 1. **Start** from the linearised form: `N / X = (1 - sigma) / lambda + (sigma -
//!    kappa) / lambda N + kappa / lambda N²` is a quadratic in `N`, fitted by linear least
//!    squares (`a0 + a1 N + a2 N²` gives `lambda = 1 / (a0 + a1 + a2)`, `sigma = lambda
//!    (a1 + a2)`, `kappa = lambda a2`), clamped into the bounds; the R package's start
//!    (`lambda = max X/N`, `sigma = 0.01`, `kappa = 0.0001`) is tried as well.
//! 2. **Minimise** the sum of squared throughput residuals with Levenberg–Marquardt
//!    ([`lm`]) from both starts on the interior and on each face of the bounds (`kappa =
//!    0`, `sigma = 0`, both), and keep the smallest sum of squares. A constrained minimum
//!    is an unconstrained minimum of one of those faces, so this finds it exactly (no
//!    penalty, no clipping bias).
//! 3. **Standard errors** from the Jacobian at the optimum: `cov = s² (JᵀJ)⁻¹`, `s² =
//!    SSE / (n - 3)`, over all three parameters even when one sits on its bound (what R's
//!    `usl` reports). With exactly 3 points there is no residual degree of freedom and no
//!    standard error.
//! 4. `r_squared = 1 - SSE / Σ (X - mean X)²`.
//!
//! The peak is at `N* = sqrt((1 - sigma) / kappa)` with `X(N*)`; with `kappa = 0`
//! throughput never falls and approaches `lambda / sigma` (Amdahl's ceiling), or grows
//! without bound when `sigma = 0` too.

pub mod lm;

#[cfg(test)]
mod tests;

use lm::Model;

/// Number of USL parameters fitted (`lambda`, `sigma`, `kappa`).
pub const USL_PARAMETERS: usize = 3;

/// One load-test measurement: throughput at a concurrency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Requests in flight (`N`, > 0).
    pub concurrency: f64,
    /// Completed requests per unit time (`X`, >= 0).
    pub throughput: f64,
}

/// Why a fit could not be made. Not fatal to a process: the caller reports it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer measurements, or fewer distinct concurrencies, than parameters.
    #[error(
        "{points} measurements at {distinct} distinct concurrencies: fitting lambda, sigma and kappa needs at least {USL_PARAMETERS} distinct concurrencies"
    )]
    TooFewPoints {
        /// Measurements given.
        points: usize,
        /// Distinct concurrencies among them.
        distinct: usize,
    },
    /// A value the model cannot take (the reader should have rejected it).
    #[error("measurement {index}: {message}")]
    BadValue {
        /// 0-based index of the measurement.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Every throughput is zero: there is nothing to fit.
    #[error("every throughput is 0: nothing to fit")]
    NoThroughput,
}

/// A USL fit: the coefficients, their standard errors and the quality of the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UslFit {
    /// Throughput of one request alone (`X(1)` of the curve), per unit time.
    pub lambda: f64,
    /// Contention coefficient (>= 0).
    pub sigma: f64,
    /// Coherency coefficient (>= 0).
    pub kappa: f64,
    /// Standard error of `lambda`; `None` without residual degrees of freedom or when
    /// `JᵀJ` is singular.
    pub lambda_se: Option<f64>,
    /// Standard error of `sigma`.
    pub sigma_se: Option<f64>,
    /// Standard error of `kappa`.
    pub kappa_se: Option<f64>,
    /// Residual standard error `sqrt(SSE / (n - 3))`.
    pub residual_se: Option<f64>,
    /// Sum of squared residuals.
    pub sse: f64,
    /// Coefficient of determination `1 - SSE / SST`.
    pub r_squared: f64,
    /// Measurements fitted.
    pub points: usize,
    /// Levenberg–Marquardt iterations of the winning run.
    pub iterations: u32,
}

impl UslFit {
    /// `X(N)` of the fitted curve.
    pub fn throughput(&self, n: f64) -> f64 {
        usl_throughput(self.lambda, self.sigma, self.kappa, n)
    }

    /// The concurrency of peak throughput `sqrt((1 - sigma) / kappa)` and the throughput
    /// there; `None` when `kappa = 0` (throughput never falls) or `sigma >= 1`
    /// (throughput falls from `N = 1`).
    pub fn peak(&self) -> Option<(f64, f64)> {
        if self.kappa > 0.0 && self.sigma < 1.0 {
            let n = ((1.0 - self.sigma) / self.kappa).sqrt();
            Some((n, self.throughput(n)))
        } else {
            None
        }
    }

    /// The throughput approached as `N` grows when `kappa = 0`: `lambda / sigma`
    /// (Amdahl's ceiling); `None` when `kappa > 0` (there is a peak) or `sigma = 0`
    /// (linear scaling, no ceiling).
    pub fn ceiling(&self) -> Option<f64> {
        (self.kappa == 0.0 && self.sigma > 0.0).then(|| self.lambda / self.sigma)
    }
}

/// `X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))`.
pub fn usl_throughput(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// The measurements as an [`lm::Model`] with parameters `[lambda, sigma, kappa]`.
struct Usl<'a>(&'a [Measurement]);

impl Model<3> for Usl<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn observed(&self, i: usize) -> f64 {
        self.0[i].throughput
    }
    fn eval(&self, i: usize, p: &[f64; 3]) -> (f64, [f64; 3]) {
        let n = self.0[i].concurrency;
        let [lambda, sigma, kappa] = *p;
        let d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
        let x = lambda * n / d;
        let dd = lambda * n / (d * d);
        (x, [n / d, -dd * (n - 1.0), -dd * n * (n - 1.0)])
    }
}

/// The linearised start: `N / X` fitted as a quadratic in `N` (points with `X > 0`).
fn linearised_start(points: &[Measurement]) -> Option<[f64; 3]> {
    // Normal equations of y = a0 + a1 N + a2 N², N scaled by its maximum for conditioning.
    let scale = points.iter().map(|m| m.concurrency).fold(0.0_f64, f64::max);
    let mut a = [[0.0; 3]; 3];
    let mut b = [0.0; 3];
    let mut used = 0;
    for m in points.iter().filter(|m| m.throughput > 0.0) {
        let u = m.concurrency / scale;
        let y = m.concurrency / m.throughput;
        let row = [1.0, u, u * u];
        for j in 0..3 {
            b[j] += row[j] * y;
            for k in 0..3 {
                a[j][k] += row[j] * row[k];
            }
        }
        used += 1;
    }
    if used < 3 {
        return None;
    }
    let c = solve3(a, b)?;
    let (a0, a1, a2) = (c[0], c[1] / scale, c[2] / (scale * scale));
    let lambda = 1.0 / (a0 + a1 + a2);
    if !(lambda.is_finite() && lambda > 0.0) {
        return None;
    }
    let sigma = (lambda * (a1 + a2)).max(0.0);
    let kappa = (lambda * a2).max(0.0);
    (sigma.is_finite() && kappa.is_finite()).then_some([lambda, sigma, kappa])
}

fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    if d == 0.0 || !d.is_finite() {
        return None;
    }
    let mut x = [0.0; 3];
    for (col, xc) in x.iter_mut().enumerate() {
        let mut m = a;
        for row in 0..3 {
            m[row][col] = b[row];
        }
        *xc = det(m) / d;
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Fits the USL to load-test measurements (see the module docs for the method).
///
/// Errors: fewer than 3 distinct concurrencies, a concurrency that is not a finite
/// number > 0 or a throughput that is not a finite number >= 0, or no throughput at all.
pub fn fit_usl(points: &[Measurement]) -> Result<UslFit, FitError> {
    for (index, m) in points.iter().enumerate() {
        if !(m.concurrency.is_finite() && m.concurrency > 0.0) {
            return Err(FitError::BadValue {
                index,
                message: format!(
                    "concurrency must be a finite number > 0, got {}",
                    m.concurrency
                ),
            });
        }
        if !(m.throughput.is_finite() && m.throughput >= 0.0) {
            return Err(FitError::BadValue {
                index,
                message: format!(
                    "throughput must be a finite number >= 0, got {}",
                    m.throughput
                ),
            });
        }
    }
    let mut distinct: Vec<f64> = points.iter().map(|m| m.concurrency).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < USL_PARAMETERS {
        return Err(FitError::TooFewPoints {
            points: points.len(),
            distinct: distinct.len(),
        });
    }
    if points.iter().all(|m| m.throughput == 0.0) {
        return Err(FitError::NoThroughput);
    }
    let model = Usl(points);
    let max_efficiency = points
        .iter()
        .map(|m| m.throughput / m.concurrency)
        .fold(0.0_f64, f64::max);
    let mut starts = vec![[max_efficiency, 0.01, 0.0001]];
    if let Some(s) = linearised_start(points) {
        starts.insert(0, s);
    }
    let lower = [0.0, 0.0, 0.0];
    let faces = [
        [true, true, true],
        [true, true, false],
        [true, false, true],
        [true, false, false],
    ];
    let mut best: Option<lm::Solution<3>> = None;
    for free in faces {
        for start in &starts {
            let mut s = *start;
            for k in 1..3 {
                if !free[k] {
                    s[k] = 0.0;
                }
            }
            let sol = lm::minimise(&model, s, free, lower);
            if !sol.sse.is_finite() {
                continue;
            }
            // Strictly better only: ties keep the earlier (interior first) solution.
            if best.is_none_or(|b| sol.sse < b.sse * (1.0 - 1e-12)) {
                best = Some(sol);
            }
        }
    }
    let best = best.ok_or(FitError::NoThroughput)?;
    let [lambda, sigma, kappa] = best.params;
    let n = points.len();
    let mean = points.iter().map(|m| m.throughput).sum::<f64>() / n as f64;
    let sst: f64 = points.iter().map(|m| (m.throughput - mean).powi(2)).sum();
    let r_squared = if sst > 0.0 {
        1.0 - best.sse / sst
    } else {
        f64::NAN
    };
    let dof = n.saturating_sub(USL_PARAMETERS);
    let s2 = (dof > 0).then(|| best.sse / dof as f64);
    let inv = lm::inverse_normal_matrix(&model, &best.params);
    let se = |k: usize| match (s2, inv) {
        (Some(s2), Some(inv)) if inv[k][k] >= 0.0 => Some((s2 * inv[k][k]).sqrt()),
        _ => None,
    };
    Ok(UslFit {
        lambda,
        sigma,
        kappa,
        lambda_se: se(0),
        sigma_se: se(1),
        kappa_se: se(2),
        residual_se: s2.map(f64::sqrt),
        sse: best.sse,
        r_squared,
        points: n,
        iterations: best.iterations,
    })
}
