//! Bounded nonlinear least squares for small problems: Levenberg–Marquardt with
//! Marquardt's diagonal scaling and Nielsen's damping update.
//!
//! Minimises `F(p) = Σ (y_i - f(x_i; p))²` over the parameters that are *free*; the
//! others stay at their start value. Each parameter has a lower bound: a step that would
//! cross it is projected back onto it. Callers that need the exact optimum on a bound
//! solve the face problems too (fix the bounded parameter at the bound, free the rest)
//! and keep the best; see [`fit_usl`](super::fit_usl).
//!
//! Everything is sequential and deterministic: the same inputs give the same bits.
//!
//! The small dense matrices are indexed by row and column on purpose: that is how the
//! algebra reads.
#![allow(clippy::needless_range_loop)]

/// How a model is evaluated: for point `i` and parameters `p`, the model value
/// `f(x_i; p)` and its gradient `∂f/∂p`.
pub trait Model<const P: usize> {
    /// Number of points.
    fn len(&self) -> usize;
    /// Whether there are no points.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The observed value at point `i`.
    fn observed(&self, i: usize) -> f64;
    /// Model value and gradient at point `i`.
    fn eval(&self, i: usize, p: &[f64; P]) -> (f64, [f64; P]);
}

/// What [`minimise`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solution<const P: usize> {
    /// The parameters at the minimum found.
    pub params: [f64; P],
    /// The sum of squared residuals there.
    pub sse: f64,
    /// Iterations taken (accepted and rejected steps).
    pub iterations: u32,
    /// Whether a convergence test was met (rather than the iteration limit).
    pub converged: bool,
}

/// Iteration limit of [`minimise`].
pub const MAX_ITERATIONS: u32 = 1000;

/// Relative step size under which the iteration stops.
const STEP_TOLERANCE: f64 = 1e-13;

/// Relative decrease of the sum of squares under which the iteration stops.
const SSE_TOLERANCE: f64 = 1e-15;

/// Sum of squared residuals at `p`; NaN if any model value is not finite.
pub fn sse<const P: usize>(model: &impl Model<P>, p: &[f64; P]) -> f64 {
    let mut s = 0.0;
    for i in 0..model.len() {
        let r = model.observed(i) - model.eval(i, p).0;
        s += r * r;
    }
    if s.is_finite() {
        s
    } else {
        f64::NAN
    }
}

/// `JᵀJ` and `Jᵀr` (J = ∂f/∂p, r = y - f) at `p`, with the sum of squares.
fn normal_equations<const P: usize>(
    model: &impl Model<P>,
    p: &[f64; P],
) -> ([[f64; P]; P], [f64; P], f64) {
    let mut a = [[0.0; P]; P];
    let mut g = [0.0; P];
    let mut s = 0.0;
    for i in 0..model.len() {
        let (f, grad) = model.eval(i, p);
        let r = model.observed(i) - f;
        s += r * r;
        for j in 0..P {
            g[j] += grad[j] * r;
            for k in 0..=j {
                a[j][k] += grad[j] * grad[k];
            }
        }
    }
    for j in 0..P {
        for k in 0..j {
            a[k][j] = a[j][k];
        }
    }
    (a, g, s)
}

/// Solves the `m x m` system `a x = b` (leading block of the arrays) by Gaussian
/// elimination with partial pivoting; `None` if it is singular to working precision.
fn solve<const P: usize>(mut a: [[f64; P]; P], mut b: [f64; P], m: usize) -> Option<[f64; P]> {
    let scale = (0..m)
        .map(|i| a[i][i].abs())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    for col in 0..m {
        let pivot = (col..m).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        // NaN pivots fail this test too.
        if a[pivot][col].abs().partial_cmp(&(scale * 1e-15)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..m {
            let f = a[row][col] / a[col][col];
            for k in col..m {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; P];
    for row in (0..m).rev() {
        let mut v = b[row];
        for k in row + 1..m {
            v -= a[row][k] * x[k];
        }
        x[row] = v / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// `(JᵀJ)⁻¹` at `p` over all parameters (the covariance of the estimates is `s²` times
/// it, `s² = F / (n - P)`). Computed on the diagonally scaled matrix for accuracy;
/// `None` if `JᵀJ` is singular.
pub fn inverse_normal_matrix<const P: usize>(
    model: &impl Model<P>,
    p: &[f64; P],
) -> Option<[[f64; P]; P]> {
    let (a, _, _) = normal_equations(model, p);
    let d: Vec<f64> = (0..P).map(|i| a[i][i].sqrt()).collect();
    if d.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
        return None;
    }
    let mut scaled = [[0.0; P]; P];
    for i in 0..P {
        for j in 0..P {
            scaled[i][j] = a[i][j] / (d[i] * d[j]);
        }
    }
    let mut inv = [[0.0; P]; P];
    for col in 0..P {
        let mut e = [0.0; P];
        e[col] = 1.0;
        let x = solve(scaled, e, P)?;
        for row in 0..P {
            inv[row][col] = x[row] / (d[row] * d[col]);
        }
    }
    Some(inv)
}

/// Minimises the sum of squares from `start`, moving only the `free` parameters and
/// keeping each at or above its `lower` bound.
pub fn minimise<const P: usize>(
    model: &impl Model<P>,
    start: [f64; P],
    free: [bool; P],
    lower: [f64; P],
) -> Solution<P> {
    let idx: Vec<usize> = (0..P).filter(|&i| free[i]).collect();
    let m = idx.len();
    let mut p = start;
    for i in 0..P {
        p[i] = p[i].max(lower[i]);
    }
    let (mut a, mut g, mut f) = normal_equations(model, &p);
    let mut out = Solution {
        params: p,
        sse: f,
        iterations: 0,
        converged: false,
    };
    if m == 0 || !f.is_finite() {
        out.converged = m == 0;
        return out;
    }
    // Damping relative to the scaled matrix, whose diagonal is 1.
    let mut mu = 1e-3;
    let mut nu = 2.0;
    while out.iterations < MAX_ITERATIONS {
        out.iterations += 1;
        if f == 0.0 {
            out.converged = true;
            break;
        }
        // Scaled system: (S A S + mu I) z = S g, h = S z, S = diag(A)^(-1/2).
        let mut s = [1.0; P];
        let mut sa = [[0.0; P]; P];
        let mut sg = [0.0; P];
        for (r, &i) in idx.iter().enumerate() {
            let d = a[i][i];
            s[r] = if d > 0.0 && d.is_finite() {
                1.0 / d.sqrt()
            } else {
                1.0
            };
        }
        for (r, &i) in idx.iter().enumerate() {
            for (c, &j) in idx.iter().enumerate() {
                sa[r][c] = a[i][j] * s[r] * s[c];
            }
            sa[r][r] += mu;
            sg[r] = g[i] * s[r];
        }
        let Some(z) = solve(sa, sg, m) else {
            mu *= nu;
            nu *= 2.0;
            if !mu.is_finite() {
                break;
            }
            continue;
        };
        let mut trial = p;
        let mut small = true;
        let mut h = [0.0; P];
        for (r, &i) in idx.iter().enumerate() {
            h[i] = z[r] * s[r];
            trial[i] = (p[i] + h[i]).max(lower[i]);
            h[i] = trial[i] - p[i];
            if h[i].abs() > STEP_TOLERANCE * (p[i].abs() + STEP_TOLERANCE) {
                small = false;
            }
        }
        if small {
            out.converged = true;
            break;
        }
        let f_new = sse(model, &trial);
        // Predicted decrease of the linear model: hᵀg + mu hᵀDh (D = diag(A)) for the
        // unprojected step; recomputed from the projected step as 2hᵀg - hᵀAh.
        let mut predicted = 0.0;
        for &i in &idx {
            predicted += 2.0 * h[i] * g[i];
            for &j in &idx {
                predicted -= h[i] * a[i][j] * h[j];
            }
        }
        let actual = f - f_new;
        if f_new.is_finite() && actual > 0.0 {
            let rho = if predicted > 0.0 {
                actual / predicted
            } else {
                1.0
            };
            p = trial;
            let done = actual <= SSE_TOLERANCE * f;
            (a, g, f) = normal_equations(model, &p);
            out.params = p;
            out.sse = f;
            mu *= (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0);
            nu = 2.0;
            if done {
                out.converged = true;
                break;
            }
        } else {
            mu *= nu;
            nu *= 2.0;
            if !mu.is_finite() || mu > 1e30 {
                // No step decreases the sum of squares: a (local) minimum.
                out.converged = true;
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = a exp(b x): a classic two-parameter test.
    struct Exp {
        x: Vec<f64>,
        y: Vec<f64>,
    }

    impl Model<2> for Exp {
        fn len(&self) -> usize {
            self.x.len()
        }
        fn observed(&self, i: usize) -> f64 {
            self.y[i]
        }
        fn eval(&self, i: usize, p: &[f64; 2]) -> (f64, [f64; 2]) {
            let e = (p[1] * self.x[i]).exp();
            (p[0] * e, [e, p[0] * self.x[i] * e])
        }
    }

    #[test]
    fn recovers_an_exact_model_from_a_poor_start() {
        let x: Vec<f64> = (0..10).map(|i| i as f64 * 0.3).collect();
        let y = x.iter().map(|x| 2.5 * (-0.7 * x).exp()).collect();
        let m = Exp { x, y };
        let s = minimise(&m, [1.0, 0.0], [true, true], [f64::MIN, f64::MIN]);
        assert!(s.converged);
        assert!((s.params[0] - 2.5).abs() < 1e-9, "{s:?}");
        assert!((s.params[1] + 0.7).abs() < 1e-9, "{s:?}");
        assert!(s.sse < 1e-18);
    }

    #[test]
    fn fixed_parameters_stay_and_bounds_hold() {
        let x: Vec<f64> = (0..10).map(|i| i as f64 * 0.3).collect();
        let y = x.iter().map(|x| 2.5 * (-0.7 * x).exp()).collect();
        let m = Exp { x, y };
        let s = minimise(&m, [2.0, -0.7], [true, false], [f64::MIN, f64::MIN]);
        assert_eq!(s.params[1], -0.7);
        assert!((s.params[0] - 2.5).abs() < 1e-9);
        // A rate bounded at 0 cannot go negative: the fit sits on the bound.
        let s = minimise(&m, [2.0, 0.5], [true, true], [f64::MIN, 0.0]);
        assert_eq!(s.params[1], 0.0, "{s:?}");
    }

    #[test]
    fn inverse_of_a_known_matrix() {
        // Straight line y = a + b x at x = 0, 1, 2: JᵀJ = [[3, 3], [3, 5]].
        struct Line;
        impl Model<2> for Line {
            fn len(&self) -> usize {
                3
            }
            fn observed(&self, _: usize) -> f64 {
                0.0
            }
            fn eval(&self, i: usize, _: &[f64; 2]) -> (f64, [f64; 2]) {
                (0.0, [1.0, i as f64])
            }
        }
        let inv = inverse_normal_matrix(&Line, &[0.0, 0.0]).unwrap();
        let want = [[5.0 / 6.0, -0.5], [-0.5, 0.5]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - want[i][j]).abs() < 1e-12, "{inv:?}");
            }
        }
    }
}
